import Foundation
import Testing
import MoE

/// The `moe` command line as scripts use it: output, exit codes (0 ok, 1 failure, 2 usage),
/// and failures as one line on stderr. Runs the binary `swift test` builds next to the tests.
@Suite("moe CLI")
struct CLITests {
    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static let binary: URL = {
        // The test bundle lives in the build folder, next to the `moe` executable.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("moe").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("moe")
    }()

    func run(_ args: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test("moe info describes a model in text and JSON")
    func info() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "moe not built at \(Self.binary.path)")
        let text = try run(["info", Fixtures.path("models/tiny-qwen3moe-q8_0.gguf")])
        #expect(text.status == 0 && text.stderr.isEmpty)
        #expect(text.stdout.contains("8 routed, 2 used per token, expert FFN 32"))
        #expect(text.stdout.contains("gpt2 (pre qwen2), 259 tokens, chat template yes"))
        let json = try run(["info", "--json"], environment: ["MOE_MODEL": Fixtures.path("models/tiny-mixtral-q4_0.gguf")])
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        #expect(object["architecture"] as? String == "llama")
        #expect((object["bytes"] as! [String: Any])["routed_experts"] as? Int == 55296)
    }

    @Test("moe bench -d runs every test after that many tokens of context, named as llama-bench names them, the KV cache in the roofline")
    func benchDepth() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let model = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let json = try run(["bench", "-m", model, "-p", "4", "-n", "2", "-d", "6", "-r", "1", "-t", "2", "-o", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        let tests = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(tests.map { $0["n_depth"] as? Int } == [6, 6])
        // 2 layers x 2 KV heads x (16 + 16) dimensions x 2 bytes, at a mean context of 6 + (2 + 1) / 2.
        #expect(tests[1]["kv_bytes_per_token"] as? Double == 256 * 7.5)
        let bandwidth = try #require(tests[1]["memory_bandwidth_bytes_per_s"] as? Double)
        let active = try #require(tests[1]["active_bytes_per_token"] as? Int), ceiling = try #require(tests[1]["roofline_ts"] as? Double)
        #expect(abs(ceiling - bandwidth / (Double(active) + 256 * 7.5)) < 1e-6 * ceiling)
        // Each decode repetition is judged against the faster of the probes just before and after
        // it, and the probe's buffer (256 MiB, kept for the run) is not counted in the peak RSS.
        let perRep = try #require(tests[1]["memory_bandwidth_per_rep_bytes_per_s"] as? [Double])
        let probes = try #require(tests[1]["memory_bandwidth_probes_bytes_per_s"] as? [Double])
        #expect(probes.count == 2 && perRep.first == probes.max())
        let samples = try #require(tests[1]["samples_ts"] as? [Double]), bytes = try #require(tests[1]["bytes_per_step"] as? Double)
        #expect(perRep.count == 1 && perRep[0] > 0 && tests[0]["memory_bandwidth_per_rep_bytes_per_s"] is NSNull)
        let fraction = try #require(tests[1]["roofline_fraction"] as? Double)
        #expect(abs(fraction - samples[0] * bytes / perRep[0]) < 1e-9 * fraction)
        #expect(try #require(tests[1]["peak_rss_bytes"] as? Int) < 256 << 20)
        let md = try run(["bench", "-m", model, "-p", "4", "-n", "2", "-d", "6", "-r", "1", "-t", "1", "--parallel", "2"])
        #expect(md.status == 0 && md.stdout.contains("| pp4 @ d6 |") && md.stdout.contains("| tg2 @ d6 |") && md.stdout.contains("| tg2 x2 @ d6 |"))
        #expect(md.stdout.contains("of KV cache) per token") && md.stdout.contains("against the faster of the bandwidths measured just before and after it"))
        let csv = try run(["bench", "-m", model, "-p", "0", "-n", "2", "-d", "3", "-r", "1", "-t", "1", "-o", "csv"])
        #expect(csv.stdout.split(separator: "\n").first?.hasSuffix(",n_depth") == true && csv.stdout.split(separator: "\n").last?.hasSuffix(",3") == true)
        #expect(try run(["bench", "-m", model, "-d", "-1"]).status == 2)
        #expect(try run(["bench", "-m", model, "-d", "x"]).status == 2)
    }

    @Test("moe bench --ab-without alternates steps between all CPU features and fewer, and prints both halves' medians")
    func benchABFeatures() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let model = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let md = try run(["bench", "-m", model, "-p", "4", "-n", "6", "-r", "3", "-t", "2", "--ab-without", "avx512-vnni,neon-dotprod"])
        #expect(md.status == 0, "\(md.stderr)")
        #expect(md.stdout.contains("tg6 A/B: all features ") && md.stdout.contains("without avx512-vnni,neon-dotprod ")
                && md.stdout.contains("(medians of 9 and 9 steps)"))
        #expect(md.stdout.contains("pp4 A/B: all features ") && md.stdout.contains("(medians of 1 and 2 runs)"))
        let json = try run(["bench", "-m", model, "-p", "0", "-n", "4", "-r", "1", "-t", "1", "--ab-without", "all", "-o", "json"])
        let tests = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(tests.first?["ab_without"] as? String == "all" && (tests.first?["ab_ms_per_token_without"] as? Double ?? 0) > 0)
        let bad = try run(["bench", "-m", model, "--ab-without", "avx512"])
        #expect(bad.status == 2 && bad.stderr.contains("not 'avx512'"))
    }

    @Test("moe bench --parallel adds an aggregate decode test, and every decode test splits its time per token")
    func benchParallel() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let model = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let json = try run(["bench", "-m", model, "-p", "8", "-n", "4", "-r", "2", "-t", "2", "--parallel", "3", "-o", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        let tests = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(tests.map { $0["n_parallel"] as? Int } == [1, 1, 3])
        #expect(tests.map { $0["n_gen"] as? Int } == [0, 4, 4])
        for test in tests.dropFirst() {
            let split = try #require(test["time_per_token_ms"] as? [String: Double])
            #expect(Set(split.keys) == ["attention", "router", "experts", "output", "waiting", "overlapped"])
            #expect(split.values.allSatisfy { $0 >= 0 } && split["experts"]! > 0)
        }
        #expect(try #require(tests[1]["time_per_token_ms"] as? [String: Double])["overlapped"] == 0, "one sequence overlaps nothing")
        #expect(tests[0]["roofline_fraction"] is NSNull, "prompts have no roofline")
        #expect(tests[1]["experts_per_layer_step"] as? Double == 2, "one token runs top-k (2) per layer")
        let batch = try #require(tests[2]["experts_per_layer_step"] as? Double)
        #expect(batch >= 2 && batch <= 4, "three tokens share experts or add some of the four")
        // The batch's roofline: bandwidth over its bytes per step, three tokens a step.
        let bandwidth = try #require(tests[2]["memory_bandwidth_bytes_per_s"] as? Double)
        let bytes = try #require(tests[2]["bytes_per_step"] as? Double), one = try #require(tests[1]["bytes_per_step"] as? Double)
        let active = try #require(tests[1]["active_bytes_per_token"] as? Int), ceiling = try #require(tests[2]["roofline_ts"] as? Double)
        let kv = try #require(tests[1]["kv_bytes_per_token"] as? Double)
        #expect(bytes >= one && one == Double(active) + kv, "one token: its weights and its KV cache")
        #expect(abs(ceiling - bandwidth * 3 / bytes) < 1e-6 * bandwidth / bytes)
        #expect(tests[1]["roofline_fraction"] as? Double != nil && tests[2]["roofline_fraction"] as? Double != nil)
        let md = try run(["bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-t", "1", "--parallel", "2"])
        #expect(md.stdout.contains("| tg2 x2 |"))
        #expect(md.stdout.contains("tg2 x2 time per token: attention"))
        #expect(md.stdout.contains("tg2 x2 roofline: ") && md.stdout.contains("experts per layer per step of 2 tokens (one token: 2)"))
        let plain = try run(["bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-t", "2", "--parallel", "2", "--no-overlap"])
        #expect(plain.status == 0 && plain.stdout.contains("| tg2 x2 |") && !plain.stdout.contains("halves overlapped"))
        // Two threads run the batch as one unless told otherwise (the halves' overlap is only
        // reported when it ran); --overlap asks for the halves, and contradicting flags are an error.
        #expect(!Session.overlapsByDefault(threads: 2) && Session.overlapsByDefault(threads: 3))
        let twoThreads = try run(["bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-t", "2", "--parallel", "2"])
        #expect(twoThreads.status == 0 && !twoThreads.stdout.contains("halves overlapped"))
        let forced = try run(["bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-t", "2", "--parallel", "2", "--overlap"])
        #expect(forced.status == 0 && forced.stdout.contains("| tg2 x2 |"))
        #expect(try run(["bench", "-m", model, "--parallel", "2", "--overlap", "--no-overlap"]).status == 2)
        #expect(try run(["bench", "-m", model, "--parallel", "0"]).status == 2)
        #expect(try run(["bench", "-m", model, "--parallel", "65"]).status == 2)
    }

    @Test("a bad file is one line on stderr and exit 1; a bad command line is exit 2")
    func failures() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let bad = try run(["info", Fixtures.path("gguf/ggml-types.json")])
        #expect(bad.status == 1 && bad.stdout.isEmpty)
        #expect(bad.stderr.split(separator: "\n").count == 1)
        #expect(bad.stderr.contains("ggml-types.json: not a GGUF file"))
        #expect(try run(["info", "/no/such.gguf"]).status == 1)
        #expect(try run(["info"], environment: ["MOE_MODEL": ""]).status == 2, "an empty MOE_MODEL counts as unset")
        #expect(try run(["info", "--frobnicate", "x"]).status == 2)
        #expect(try run(["nonsense"]).status == 2)
        #expect(try run([]).status == 2)
        #expect(try run(["--help"]).status == 0)
    }

    @Test("moe logits writes float32 logits for the last or every position, equal to the Swift API's")
    func logits() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let model = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let out = Fixtures.processScratch.appendingPathComponent("logits-\(UUID().uuidString).f32").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        func floats() throws -> [Float] {
            try Data(contentsOf: URL(fileURLWithPath: out)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        let session = try MoE.Model(path: model).makeSession(contextLength: 8)
        let expected = try session.evaluate([256, 72, 101], logits: .all)

        #expect(try run(["logits", "-m", model, "--tokens", "256 72 101", "-o", out]).status == 0)
        #expect(try floats() == Array(expected.suffix(259)))
        #expect(try run(["logits", "--tokens", "256,72,101", "-o", out, "--all"], environment: ["MOE_MODEL": model]).status == 0)
        #expect(try floats() == expected)
    }

    @Test("moe logits refuses bad ids, empty lists and context overflow")
    func logitsErrors() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let model = Fixtures.path("forward/qwen3moe-q8_0.gguf")
        let out = Fixtures.processScratch.appendingPathComponent("never-\(UUID().uuidString).f32").path
        let badId = try run(["logits", "-m", model, "--tokens", "1 9999", "-o", out])
        #expect(badId.status == 1 && badId.stderr.contains("id 9999, outside the vocabulary 0..<259"))
        #expect(badId.stderr.split(separator: "\n").count == 1)
        #expect(try run(["logits", "-m", model, "--tokens", "", "-o", out]).status == 2)
        #expect(try run(["logits", "-m", model, "--tokens", "1 x", "-o", out]).status == 2)
        #expect(try run(["logits", "-m", model, "--tokens", "1 2"]).status == 2)
        let overflow = try run(["logits", "-m", model, "--tokens", "1 2 3", "-c", "2", "-o", out])
        #expect(overflow.status == 1 && overflow.stderr.contains("overflow the context of 2"))
        #expect(!FileManager.default.fileExists(atPath: out), "nothing is written on failure")
    }
}
