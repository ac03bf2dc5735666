import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `moe demo`: runs the embedded default model (a small trained MoE, Models/demo-austen-moe.gguf)
/// on a built-in prompt, streams the continuation, then shows how its experts were used.
enum DemoCommand {
    static let fileName = "demo-austen-moe.gguf"
    static let prompt = "It is a truth universally acknowledged, that"

    static let usage = """
        usage: moe demo [-n N] [--seed S] [-t THREADS]

        Generates a continuation of a built-in prompt with the embedded demo model (a 6-layer,
        16-expert qwen3moe trained on Jane Austen's novels, see docs/DEMO-MODEL.md), then prints
        a per-layer expert usage chart and the expert-cache hit rate small budgets would give.
        The model is found at $MOE_DEMO_MODEL, next to the executable, or in the checkout's Models/.
        """

    /// Where the demo model is: `MOE_DEMO_MODEL`, beside the executable, or the source checkout.
    static func locate() -> String? {
        var candidates: [String] = []
        if let env = getenv("MOE_DEMO_MODEL"), env.pointee != 0 { candidates.append(String(cString: env)) }
        let exe = CommandLine.arguments.first ?? ""
        if let slash = exe.lastIndex(of: "/") { candidates.append(String(exe[..<slash]) + "/" + fileName) }
        // This source file is Sources/MoECLI/DemoCommand.swift inside the checkout.
        var root = #filePath
        for _ in 0..<3 { if let slash = root.lastIndex(of: "/") { root = String(root[..<slash]) } }
        candidates.append(root + "/Models/" + fileName)
        return candidates.first { access($0, R_OK) == 0 }
    }

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: ["--n-predict", "--seed", "--threads"], flags: ["--help"],
                              aliases: ["-n": "--n-predict", "-t": "--threads", "-h": "--help"])
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "moe demo takes no arguments (try moe run -m MODEL)") }
        guard let path = locate() else {
            throw MoEError(.notFound, "the demo model \(fileName) is not in Models/ of this checkout, beside the executable, or at MOE_DEMO_MODEL")
        }
        var options = GenerationOptions()
        options.maxTokens = try GenerationFlags.number(p, "--n-predict", 96)
        var s = SamplingOptions()
        s.temperature = 0.7
        s.topK = 40
        s.topP = 0.9
        s.minP = 0.05
        s.repetitionPenalty = 1.1
        s.seed = try GenerationFlags.number(p, "--seed", 2)
        options.sampling = s
        let threads = try GenerationFlags.threads(p)

        let model = try Model(path: path)
        let session = try model.makeSession(contextLength: model.config.contextLength, threads: threads)
        session.recordsRouting = true
        let c = model.config
        let bold = isatty(1) != 0 ? ("\u{1B}[1m", "\u{1B}[0m") : ("", "")
        emit("\(bold.0)swift-moe demo\(bold.1): a \(c.layers)-layer mixture of experts (\(c.experts) experts per layer, \(c.expertsUsed) per token) trained on Jane Austen.\n\n")
        emit(prompt)
        let result = try session.generate(prompt, options: options) { piece in
            emit(piece)
            return true
        }
        emit("\n\n")
        emit("\(result.promptTokens) prompt tokens, \(result.generatedTokens.count) generated at \(fixed(result.decodeTokensPerSecond, 1)) tokens/s on \(threads) thread\(threads == 1 ? "" : "s").\n\n")

        let trace = RoutingTrace(layers: c.layers, experts: c.experts, k: c.expertsUsed, ids: session.routingTrace)
        emit(usageChart(trace))
        emit(cacheSummary(trace))
        emit("""

            Next, a real model (any qwen3moe, mixtral, olmoe or qwen2moe GGUF; Q8_0, Q4_0 or K-quants):
              swift run -c release moe info MODEL.gguf
              swift run -c release moe run -m MODEL.gguf -p "Explain mixture-of-experts" --stats
              swift run -c release moe chat -m MODEL.gguf

            """)
        return 0
    }

    /// One line per layer: each expert's share of the layer's choices as a bar glyph, and the
    /// busiest expert's share against an even split.
    static func usageChart(_ trace: RoutingTrace) -> String {
        let glyphs: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        let counts = trace.counts()
        var out = "Expert usage (one column per expert, height = share of the layer's choices):\n"
        for (l, row) in counts.enumerated() {
            let total = max(row.reduce(0, +), 1)
            let top = max(row.max() ?? 1, 1)
            var bar = ""
            for n in row {
                let level = n == 0 ? 0 : max(1, Int((Double(n) / Double(top) * 8).rounded()))
                bar.append(glyphs[level])
            }
            let busiest = row.firstIndex(of: row.max() ?? 0) ?? 0
            let share = Double(row[busiest]) / Double(total)
            let even = 1.0 / Double(trace.experts)
            let unused = row.filter { $0 == 0 }.count
            out += "  layer \(l < 10 ? " " : "")\(l) |\(bar)|  busiest #\(busiest) \(fixed(share * 100, 0))% (\(fixed(share / even, 1))x even)"
            out += unused > 0 ? ", \(unused) unused\n" : "\n"
        }
        return out
    }

    /// Hit rates of an LRU expert cache holding a quarter and half of each layer's experts.
    static func cacheSummary(_ trace: RoutingTrace) -> String {
        var out = "\nExpert cache (hits if only some experts per layer stay in RAM, replaying this run):\n"
        for slots in [trace.k, trace.experts / 4, trace.experts / 2] where slots >= trace.k {
            let lru = CacheSimulator.hitRate(trace, slots: slots, policy: .lru)
            let best = CacheSimulator.hitRate(trace, slots: slots, policy: .belady)
            out += "  \(slots) of \(trace.experts) experts resident: LRU \(fixed(lru * 100, 0))% hits (optimal \(fixed(best * 100, 0))%)\n"
        }
        return out
    }
}
