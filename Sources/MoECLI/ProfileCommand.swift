import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `moe profile -m MODEL (-p PROMPT | -f FILE) [-n N] --out DIR`: runs text through the model
/// with routing recorded and writes the expert-utilization report.
enum ProfileCommand {
    static let usage = """
        usage: moe profile -m MODEL (-p PROMPT | -f FILE) [-n N] --out DIR [-t THREADS] [-c CTX] [--seed S] [--temp T]
                           [--expert-memory SIZE] [--expert-policy lru|lfu] [--no-prefetch]

        Evaluates the prompt (a long file is evaluated in context-sized windows) and generates N
        more tokens (default 0), recording which experts every token chose. Writes to DIR:
          report.json      every figure (schema: docs/PROFILING.md)
          trace.jsonl      one line per token and layer: position, layer, experts, weights
          usage.csv        one row per layer and expert
          heatmap.svg      layers x experts, colour = usage share
          cache-curve.svg  expert-cache hit rate against budget for LRU, LFU and the optimum
          index.html       one self-contained page with the pictures and a short reading
        With --expert-memory, the run goes through the expert store and its counters are printed.
        usage.csv can seed a later run's budget split: --expert-profile DIR/usage.csv.
        """ + "\n" + StoreFlags.help

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: StoreFlags.valued.union(["--model", "--prompt", "--file", "--out", "--n-predict", "--threads", "--ctx-size",
                                             "--seed", "--temp"]), flags: StoreFlags.flags.union(["--help"]),
                              aliases: ["-m": "--model", "-p": "--prompt", "-f": "--file", "-n": "--n-predict", "-t": "--threads",
                                        "-c": "--ctx-size", "-h": "--help"])
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(p.positionals[0])'") }
        guard let path = p.values["--model"] ?? environment["MOE_MODEL"] else { throw UsageError(message: "moe profile needs -m MODEL") }
        guard let out = p.values["--out"] else { throw UsageError(message: "moe profile needs --out DIR") }
        let text = try GenerationFlags.text(p, command: "profile")
        let generate: Int = try GenerationFlags.number(p, "--n-predict", 0)
        guard generate >= 0 else { throw UsageError(message: "-n must be 0 or more") }
        var options = GenerationOptions()
        options.maxTokens = generate
        var sampling = SamplingOptions.greedy
        sampling.temperature = try GenerationFlags.number(p, "--temp", 0)
        sampling.seed = try GenerationFlags.number(p, "--seed", 0)
        options.sampling = sampling
        options.stopAtEndOfGeneration = false

        let model = try StoreFlags.open(path, p)
        let c = model.config
        guard c.experts > 0 else { throw MoEError(.unsupported, "the model has no routed experts to profile", path: path) }
        let context = try GenerationFlags.context(p, model: model)
        let session = try model.makeSession(contextLength: context, threads: try GenerationFlags.threads(p))
        session.recordsRouting = true
        let tokenizer = try model.tokenizer()
        let tokens = tokenizer.encode(text)
        guard !tokens.isEmpty else { throw UsageError(message: "the prompt has no tokens") }
        // Leave room for the generated tokens in the last window.
        let window = max(1, context - generate - 1)
        var start = 0
        while start < tokens.count {
            let chunk = Array(tokens[start..<min(start + window, tokens.count)])
            if session.position + chunk.count >= context { session.reset() }
            if start + chunk.count >= tokens.count && generate > 0 {
                _ = try session.generate(tokens: chunk, options: options) { _ in true }
            } else {
                _ = try session.evaluate(chunk)
            }
            start += chunk.count
        }

        let summary = ModelSummary(file: model.file)
        let bytesPerExpert = summary.routedExpertBytes / max(c.layers * c.experts, 1)
        let report = ProfileReport(trace: RoutingTrace(session: session),
                                   subject: .init(modelPath: path, architecture: model.spec.name, bytesPerExpert: bytesPerExpert,
                                                  promptTokens: tokens.count))
        try makeDirectory(out)
        try write(report.json().serialized(indent: 1) + "\n", to: out + "/report.json")
        try write(report.traceJSONL(), to: out + "/trace.jsonl")
        try write(report.usageCSV(), to: out + "/usage.csv")
        try write(report.heatmapSVG(), to: out + "/heatmap.svg")
        try write(report.cacheCurveSVG(), to: out + "/cache-curve.svg")
        try write(report.html(), to: out + "/index.html")
        print("profiled \(report.trace.tokens) tokens (\(tokens.count) prompt, \(report.trace.tokens - tokens.count) generated) of \(path)")
        for line in report.readings() { print("  " + line) }
        print("wrote \(out)/{report.json,trace.jsonl,usage.csv,heatmap.svg,cache-curve.svg,index.html}")
        return 0
    }

    /// Creates `path` and its parents (like mkdir -p).
    static func makeDirectory(_ path: String) throws(MoEError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw MoEError(.io, "cannot create the output folder", path: prefix, cause: String(cString: strerror(errno)))
            }
        }
    }

    /// Writes `text` to `path`, replacing it.
    static func write(_ text: String, to path: String) throws(MoEError) {
        guard let f = fopen(path, "wb") else {
            throw MoEError(.io, "cannot create the file", path: path, cause: String(cString: strerror(errno)))
        }
        defer { fclose(f) }
        let bytes = Array(text.utf8)
        guard bytes.isEmpty || fwrite(bytes, 1, bytes.count, f) == bytes.count else {
            throw MoEError(.io, "cannot write the file", path: path, cause: String(cString: strerror(errno)))
        }
    }
}
