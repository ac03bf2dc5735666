import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `moe logits -m MODEL --tokens "ID ID ..." -o FILE [--all]`: evaluates token ids and writes
/// raw little-endian float32 logits (the last position's, or every position's with `--all`).
enum LogitsCommand {
    static let usage = """
        usage: moe logits -m MODEL --tokens "ID ID ..." -o FILE [--all] [-c CONTEXT] [-t THREADS] [--expert-memory SIZE ...]

        Evaluates the token ids in one batch and writes raw little-endian float32 logits to FILE:
        the last position's (n_vocab floats), or with --all every position's (n_tokens x n_vocab,
        position-major). MODEL may also come from MOE_MODEL.

          --tokens "ID ..."  token ids separated by spaces or commas
          -o FILE            where to write the logits
          --all              every position, not only the last
          -c N               context length (default: the number of tokens)
          -t N               threads (default: one per core)
        """ + "\n" + StoreFlags.help

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: StoreFlags.valued.union(["--model", "--tokens", "--output", "--context", "--threads"]),
                              flags: StoreFlags.flags.union(["--all", "--help"]),
                              aliases: ["-m": "--model", "-o": "--output", "-c": "--context", "-t": "--threads", "-h": "--help"])
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(p.positionals[0])'") }
        guard let path = p.values["--model"] ?? environment["MOE_MODEL"] else { throw UsageError(message: "moe logits needs -m MODEL") }
        guard let list = p.values["--tokens"] else { throw UsageError(message: "moe logits needs --tokens \"ID ID ...\"") }
        guard let output = p.values["--output"] else { throw UsageError(message: "moe logits needs -o FILE") }
        var tokens: [Int32] = []
        for piece in list.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) {
            guard let id = Int32(piece) else { throw UsageError(message: "'\(piece)' is not a token id") }
            tokens.append(id)
        }
        guard !tokens.isEmpty else { throw UsageError(message: "--tokens is empty") }
        var context = tokens.count
        if let text = p.values["--context"] {
            guard let n = Int(text), n > 0 else { throw UsageError(message: "-c needs a positive number") }
            context = n
        }
        let model = try StoreFlags.open(path, p)
        let session = try model.makeSession(contextLength: context, threads: try GenerationFlags.threads(p))
        let logits = try session.evaluate(tokens, logits: p.flags.contains("--all") ? .all : .last)
        try writeFloats(logits, to: output)
        return 0
    }

    static func writeFloats(_ values: [Float], to path: String) throws(MoEError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw MoEError(.io, "cannot create the output file", path: path, cause: String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            guard n > 0 else { throw MoEError(.io, "cannot write the output file", path: path, cause: String(cString: strerror(errno))) }
            done += n
        }
    }
}
