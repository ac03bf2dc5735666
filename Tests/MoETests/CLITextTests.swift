import Foundation
import Testing
import MoE

/// `moe run`, `moe tokenize`, `moe chat` and `moe demo` as scripts and people use them.
@Suite("moe CLI: text commands")
struct CLITextTests {
    func moe(_ args: [String], stdin: String = "", environment: [String: String] = [:]) throws -> CLITests.Result {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let input = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return .init(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                     stderr: String(decoding: stderr, as: UTF8.self))
    }

    let tiny = Fixtures.path("models/tiny-qwen3moe-q8_0.gguf")

    @Test("moe tokenize prints the tokenizer's ids, as text or JSON")
    func tokenize() throws {
        let tokenizer = try Tokenizer(file: GGUFFile(path: tiny))
        let r = try moe(["tokenize", "-m", tiny, "-p", "Hi <|im_end|>", "--special"])
        #expect(r.status == 0)
        #expect(r.stdout == tokenizer.encode("Hi <|im_end|>", parseSpecial: true).map(String.init).joined(separator: " ") + "\n")
        let j = try moe(["tokenize", "-m", tiny, "-p", "Hi", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [[String: Any]]
        #expect(parsed.map { $0["id"] as! Int } == tokenizer.encode("Hi").map(Int.init))
        #expect(try moe(["tokenize", "-m", tiny]).status == 2)
    }

    @Test("moe run streams the greedy continuation the Swift API gives; --stats goes to stderr")
    func run() throws {
        let model = try Model(path: tiny)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = 8
        let expected = try model.makeSession(contextLength: 256, threads: 1).generate("Hello", options: options) { _ in true }
        let r = try moe(["run", "-m", tiny, "-p", "Hello", "-n", "8", "--temp", "0", "-t", "1", "--stats"])
        #expect(r.status == 0)
        #expect(r.stdout == "Hello" + expected.text + "\n")
        #expect(r.stderr.contains("decode: \(expected.generatedTokens.count) tokens"))
        let same1 = try moe(["run", "-m", tiny, "-p", "Hello", "-n", "8", "--seed", "5", "--no-echo"])
        let same2 = try moe(["run", "-m", tiny, "-p", "Hello", "-n", "8", "--seed", "5", "--no-echo"])
        #expect(same1.stdout == same2.stdout && same1.status == 0)
    }

    @Test("moe run refuses bad options with exit 2 and bad models with exit 1")
    func runErrors() throws {
        #expect(try moe(["run", "-m", tiny]).status == 2)
        #expect(try moe(["run", "-m", tiny, "-p", "x", "--top-p", "2"]).status == 2)
        #expect(try moe(["run", "-m", tiny, "-p", "x", "--expert-memory", "lots"]).status == 2)
        #expect(try moe(["run", "-m", tiny, "-p", "x", "--expert-policy", "lfu"]).status == 2, "a policy without a budget")
        #expect(try moe(["run", "-m", tiny, "-p", "x", "--expert-memory", "1G", "--expert-policy", "mru"]).status == 2)
        let small = try moe(["run", "-m", tiny, "-p", "x", "--expert-memory", "1K"])
        #expect(small.status == 1 && small.stderr.contains("working set"))
        let bad = try moe(["run", "-m", "/nonexistent.gguf", "-p", "x"])
        #expect(bad.status == 1 && bad.stderr.split(separator: "\n").count == 1)
    }

    @Test("moe chat answers each line, keeps going after /reset, and quits at end of input")
    func chat() throws {
        let r = try moe(["chat", "-m", tiny, "-n", "4", "--temp", "0", "--stats"], stdin: "hello\n/reset\nagain\n")
        #expect(r.status == 0)
        #expect(r.stderr.contains("chatml format"))
        #expect(r.stderr.components(separatedBy: "decode: 4 tokens").count == 3)
        #expect(r.stderr.contains("(conversation reset)"))
        // The second turn evaluates only what the template adds after the first reply.
        let two = try moe(["chat", "-m", tiny, "-n", "4", "--temp", "0", "--stats"], stdin: "hello\nagain\n")
        let lines = two.stderr.split(separator: "\n")
        let prompts = lines.filter { $0.hasPrefix("prompt: ") }.map { Int($0.split(separator: " ")[1])! }
        let firstStop = lines.first { $0.hasPrefix("stop: ") } ?? ""
        let tokenizer = try Tokenizer(file: GGUFFile(path: tiny))
        let delta = (firstStop.contains("eog") ? "" : "<|im_end|>") + "\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n"
        #expect(prompts.count == 2)
        #expect(prompts.last == tokenizer.encode(delta, addSpecial: false, parseSpecial: true).count)
        let none = try moe(["chat", "-m", Fixtures.path("models/tiny-mixtral-q4_0.gguf")])
        #expect(none.status == 1 && none.stderr.contains("--chat-template"))
        let forced = try moe(["chat", "-m", Fixtures.path("models/tiny-mixtral-q4_0.gguf"), "--chat-template", "mistral-v1", "-n", "2"], stdin: "hi\n")
        #expect(forced.status == 0)
    }
}

/// `moe profile` and `moe demo` from the outside.
@Suite("moe CLI: profile and demo")
struct CLIProfileTests {
    @Test("moe profile writes the six report files, and report.json counts every token")
    func profile() throws {
        let dir = Fixtures.scratchDirectory().appendingPathComponent("prof/nested")
        let r = try CLITextTests().moe(["profile", "-m", Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"), "-p", "Hello world, hello experts",
                                        "-n", "5", "--out", dir.path, "-t", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        for f in ["report.json", "trace.jsonl", "usage.csv", "heatmap.svg", "cache-curve.svg", "index.html"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), "\(f) missing")
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json"))) as! [String: Any]
        let tokens = report["tokens"] as! Int
        #expect(tokens == (report["prompt_tokens"] as! Int) + 4)  // the 5th generated token is never evaluated
        for layer in report["layers"] as! [[String: Any]] {
            #expect((layer["selected"] as! [Int]).reduce(0, +) == tokens * 2)
        }
        #expect(try CLITextTests().moe(["profile", "-m", Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"), "-p", "x"]).status == 2)
    }
}
