import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes text to stdout at once (no buffering), so streamed pieces appear as they come.
func emit(_ text: String) {
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + done, bytes.count - done) }
        if n <= 0 { return }
        done += n
    }
}

/// The sampling and generation options shared by `run`, `chat` and `demo`.
enum GenerationFlags {
    static let valued: Set<String> = ["--n-predict", "--temp", "--top-k", "--top-p", "--min-p", "--seed", "--repeat-penalty",
                                      "--repeat-last-n", "--frequency-penalty", "--presence-penalty", "--stop", "--threads",
                                      "--ctx-size"]
    static let aliases = ["-n": "--n-predict", "-t": "--threads", "-c": "--ctx-size"]
    static let help = """
          -n N                 tokens to generate (default 128)
          --temp T             temperature, 0 = greedy (default 0.8)
          --top-k K            keep the K most likely tokens, 0 = all (default 40)
          --top-p P            nucleus sampling threshold (default 0.95)
          --min-p P            drop tokens below P x the best one's probability (default 0.05)
          --repeat-penalty R   penalise tokens of the last --repeat-last-n (default 1.0 = off, window 64)
          --frequency-penalty F, --presence-penalty P   OpenAI-style penalties (default 0)
          --seed S             random seed (default: random; printed by --stats)
          --stop TEXT          stop when the text contains TEXT (repeat with commas: --stop "a,b")
          -t N                 threads, the caller included (default: one per core)
          -c N                 context length (default: the model's, at most 4096)
        """ + "\n" + StoreFlags.help

    static func number<T: LosslessStringConvertible>(_ p: Arguments, _ name: String, _ fallback: T) throws(UsageError) -> T {
        guard let text = p.values[name] else { return fallback }
        guard let v = T(text) else { throw UsageError(message: "\(name) needs a number, not '\(text)'") }
        return v
    }

    /// Generation options from the flags; `seed` is filled in (random when not given).
    static func options(_ p: Arguments) throws(UsageError) -> GenerationOptions {
        var o = GenerationOptions()
        o.maxTokens = try number(p, "--n-predict", 128)
        guard o.maxTokens >= 0 else { throw UsageError(message: "-n must be 0 or more") }
        var s = SamplingOptions()
        s.temperature = try number(p, "--temp", s.temperature)
        s.topK = try number(p, "--top-k", s.topK)
        s.topP = try number(p, "--top-p", s.topP)
        s.minP = try number(p, "--min-p", s.minP)
        s.repetitionPenalty = try number(p, "--repeat-penalty", s.repetitionPenalty)
        s.penaltyWindow = try number(p, "--repeat-last-n", s.penaltyWindow)
        s.frequencyPenalty = try number(p, "--frequency-penalty", s.frequencyPenalty)
        s.presencePenalty = try number(p, "--presence-penalty", s.presencePenalty)
        s.seed = try number(p, "--seed", UInt64.random(in: 0...UInt64(UInt32.max)))
        do { try s.validate() } catch { throw UsageError(message: error.message) }
        o.sampling = s
        if let stop = p.values["--stop"] { o.stopStrings = stop.split(separator: ",").map(String.init) }
        return o
    }

    /// The input text of `run`, `tokenize` and `profile`: `-p TEXT` or the contents of `-f FILE`
    /// (exactly one of them).
    static func text(_ p: Arguments, command: String) throws -> String {
        switch (p.values["--prompt"], p.values["--file"]) {
        case (let text?, nil): return text
        case (nil, let file?): return try RunCommand.readText(file)
        case (nil, nil): throw UsageError(message: "moe \(command) needs -p TEXT or -f FILE")
        default: throw UsageError(message: "moe \(command) takes -p TEXT or -f FILE, not both")
        }
    }

    static func threads(_ p: Arguments) throws(UsageError) -> Int {
        let t: Int = try number(p, "--threads", ThreadPool.processorCount)
        guard t >= 1 && t <= 1024 else { throw UsageError(message: "-t must be between 1 and 1024") }
        return t
    }

    /// The context length: -c, else the model's own, capped at 4096 to keep the KV cache small.
    static func context(_ p: Arguments, model: Model) throws(UsageError) -> Int {
        if p.values["--ctx-size"] != nil {
            let c: Int = try number(p, "--ctx-size", 0)
            guard c > 0 else { throw UsageError(message: "-c must be positive") }
            return c
        }
        return min(model.config.contextLength, 4096)
    }

    /// The `--stats` lines.
    static func stats(_ r: GenerationResult, seed: UInt64) -> String {
        "prompt: \(r.promptTokens) tokens in \(fixed(r.promptSeconds, 2)) s (\(fixed(r.promptTokensPerSecond, 2)) t/s)\n"
            + "decode: \(r.generatedTokens.count) tokens in \(fixed(r.decodeSeconds, 2)) s (\(fixed(r.decodeTokensPerSecond, 2)) t/s)\n"
            + "stop: \(r.stopReason.rawValue), seed \(seed)\n"
    }
}

/// `moe run -m MODEL -p PROMPT [...]`: streams a continuation of the prompt.
enum RunCommand {
    static let usage = """
        usage: moe run -m MODEL (-p PROMPT | -f FILE) [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]
                       [--seed S] [-t THREADS] [-c CTX] [--stop TEXT] [--special] [--no-echo] [--stats]
                       [--expert-memory SIZE] [--expert-policy lru|lfu] [--expert-profile FILE] [--no-prefetch]

        Prints the prompt, then the model's continuation as it is generated. MODEL may also come
        from MOE_MODEL.

          -p TEXT              the prompt
          -f FILE              read the prompt from FILE
          --special            parse control-token text in the prompt (<|im_start|>) as tokens
          --no-echo            print only the continuation
          --stats              print prompt and decode speed, the stop reason and (with a budget)
                               the expert store's hits, misses, reads and stalls on stderr
        """ + "\n" + GenerationFlags.help

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: GenerationFlags.valued.union(StoreFlags.valued).union(["--model", "--prompt", "--file"]),
                              flags: StoreFlags.flags.union(["--help", "--stats", "--special", "--no-echo"]),
                              aliases: GenerationFlags.aliases.merging(["-m": "--model", "-p": "--prompt", "-f": "--file", "-h": "--help"]) { a, _ in a })
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(p.positionals[0])'") }
        guard let path = p.values["--model"] ?? environment["MOE_MODEL"] else { throw UsageError(message: "moe run needs -m MODEL") }
        let prompt = try GenerationFlags.text(p, command: "run")
        var options = try GenerationFlags.options(p)
        options.parseSpecial = p.flags.contains("--special")
        let threads = try GenerationFlags.threads(p)
        let model = try StoreFlags.open(path, p)
        let tokenizer = try model.tokenizer()
        if let w = tokenizer.vocabulary.warning { printError("moe run: warning: \(w)") }
        let session = try model.makeSession(contextLength: try GenerationFlags.context(p, model: model), threads: threads)
        if !p.flags.contains("--no-echo") { emit(prompt) }
        let result = try session.generate(prompt, options: options) { piece in
            emit(piece)
            return true
        }
        emit("\n")
        if p.flags.contains("--stats") {
            printError(GenerationFlags.stats(result, seed: options.sampling.seed))
            if let store = model.expertStoreStats { printError(StoreFlags.report(store)) }
            printError("peak RSS: \(formatBytes(BenchCommand.peakResidentBytes()))")
        }
        return 0
    }

    /// The whole text of a file.
    static func readText(_ path: String) throws(MoEError) -> String {
        guard let f = fopen(path, "rb") else {
            throw MoEError(.io, "cannot open the prompt file", path: path, cause: String(cString: strerror(errno)))
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > 64 << 20 { throw MoEError(.invalidArgument, "the prompt file is larger than 64 MiB", path: path) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `moe tokenize -m MODEL -p TEXT [--json]`: prints the token ids of a text.
enum TokenizeCommand {
    static let usage = """
        usage: moe tokenize -m MODEL (-p TEXT | -f FILE) [--json] [--special] [--no-bos]

        Prints the token ids of TEXT separated by spaces (with --json: an array of {id, piece}).

          --special   parse control-token text (<|im_start|>) as tokens
          --no-bos    do not add the BOS/EOS tokens the vocabulary asks for
        """

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: ["--model", "--prompt", "--file"], flags: ["--help", "--json", "--special", "--no-bos"],
                              aliases: ["-m": "--model", "-p": "--prompt", "-f": "--file", "-h": "--help"])
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(p.positionals[0])'") }
        guard let path = p.values["--model"] ?? environment["MOE_MODEL"] else { throw UsageError(message: "moe tokenize needs -m MODEL") }
        let text = try GenerationFlags.text(p, command: "tokenize")
        let tokenizer = try Tokenizer(file: GGUFFile(path: path))
        if let w = tokenizer.vocabulary.warning { printError("moe tokenize: warning: \(w)") }
        let ids = tokenizer.encode(text, addSpecial: !p.flags.contains("--no-bos"), parseSpecial: p.flags.contains("--special"))
        if p.flags.contains("--json") {
            let items: [JSONValue] = ids.map { id in
                .object([("id", .int(Int(id))), ("piece", .string(String(decoding: tokenizer.piece(id, special: true), as: UTF8.self)))])
            }
            print(JSONValue.array(items).serialized())
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
        return 0
    }
}

/// `moe chat -m MODEL`: a conversation in the terminal, replies streamed, the KV cache kept
/// between turns. `/reset` starts over, Ctrl-D quits.
enum ChatCommand {
    static let usage = """
        usage: moe chat -m MODEL [--system TEXT] [--chat-template NAME] [sampling options]

        An interactive conversation. Type a message and press Enter; /reset forgets the
        conversation, /exit or Ctrl-D quits. The prompt format comes from the model's chat
        template; --chat-template picks one by name (\(ChatTemplate.allCases.map(\.rawValue).joined(separator: ", "))).

          --system TEXT        a system message to start with
        """ + "\n" + GenerationFlags.help

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: GenerationFlags.valued.union(StoreFlags.valued).union(["--model", "--system", "--chat-template"]),
                              flags: StoreFlags.flags.union(["--help", "--stats"]),
                              aliases: GenerationFlags.aliases.merging(["-m": "--model", "-h": "--help"]) { a, _ in a })
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(p.positionals[0])'") }
        guard let path = p.values["--model"] ?? environment["MOE_MODEL"] else { throw UsageError(message: "moe chat needs -m MODEL") }
        var options = try GenerationFlags.options(p)
        if p.values["--n-predict"] == nil { options.maxTokens = 512 }
        options.parseSpecial = true
        options.evaluateLastToken = true
        let model = try StoreFlags.open(path, p)
        let tokenizer = try model.tokenizer()
        let template = try ChatTemplate.resolve(name: p.values["--chat-template"], vocabulary: tokenizer.vocabulary)
        let eosText = tokenizer.vocabulary.eos.map { tokenizer.vocabulary.tokens[Int($0)] } ?? "</s>"
        let session = try model.makeSession(contextLength: try GenerationFlags.context(p, model: model),
                                            threads: try GenerationFlags.threads(p))
        var conversation = Conversation(template: template, eos: eosText, system: p.values["--system"])
        printError("moe chat: \(template.rawValue) format, context \(session.contextLength) tokens. /reset starts over, Ctrl-D quits.")
        while true {
            emit("\n> ")
            guard let line = readLine(strippingNewline: true) else { emit("\n"); break }
            let input = line.trimmingWhitespace()
            if input.isEmpty { continue }
            if input == "/exit" || input == "/quit" { break }
            if input == "/reset" {
                session.reset()
                conversation.reset()
                printError("(conversation reset)")
                continue
            }
            var turn = conversation.userTurn(input)
            if !turn.continues {
                session.reset()
            }
            if session.position + 8 >= session.contextLength {
                printError("(context full: starting over)")
                session.reset()
                conversation.reset()
                turn = conversation.userTurn(input)
            }
            var o = options
            o.addSpecial = session.position == 0
            let result = try session.generate(turn.text, options: o) { piece in
                emit(piece)
                return true
            }
            emit("\n")
            // What the session now holds after the prompt: the reply, and the end-of-turn token
            // when the model produced one (it was evaluated too).
            var held = result.text
            if result.stopReason == .endOfGeneration, let last = result.generatedTokens.last {
                held += String(decoding: tokenizer.piece(last, special: true), as: UTF8.self)
            }
            conversation.assistantReplied(result.text, sessionText: held)
            if p.flags.contains("--stats") {
                printError(GenerationFlags.stats(result, seed: o.sampling.seed))
                if let store = model.expertStoreStats { printError(StoreFlags.report(store)) }
            }
            options.sampling.seed &+= 1
        }
        return 0
    }
}

/// The messages of a chat and the text each new turn adds to the session.
struct Conversation {
    let template: ChatTemplate
    let eos: String
    let system: String?
    private(set) var messages: [ChatMessage] = []
    /// The rendered text the session already holds.
    private var rendered = ""

    init(template: ChatTemplate, eos: String, system: String?) {
        self.template = template
        self.eos = eos
        self.system = system
        reset()
    }

    mutating func reset() {
        messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        rendered = ""
    }

    /// The text to evaluate for a new user message: only what follows the history when the
    /// format renders the history as a prefix (`continues`), else the whole conversation.
    mutating func userTurn(_ text: String) -> (text: String, continues: Bool) {
        messages.append(ChatMessage(role: "user", content: text))
        let full = template.render(messages, addAssistant: true, eos: eos)
        defer { rendered = full }
        if !rendered.isEmpty && full.hasPrefix(rendered) {
            return (String(full.dropFirst(rendered.count)), true)
        }
        return (full, rendered.isEmpty)
    }

    /// Records the reply. `sessionText` is what the session evaluated after the prompt (the reply
    /// and its end-of-turn token), so the next turn adds exactly what the template puts after it
    /// (the newline after `<|im_end|>`, say).
    mutating func assistantReplied(_ text: String, sessionText: String) {
        messages.append(ChatMessage(role: "assistant", content: text))
        rendered += sessionText
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
