import Foundation
import Testing
@testable import MoE

/// llama.cpp's own tokenizer test strings and expected ids for each vocabulary in ../shared/vocab.
@Suite("Tokenizer parity with llama.cpp")
struct TokenizerParityTests {
    static let folder = SharedVocabularyTests.folder
    static let files = SharedVocabularyTests.files

    /// The test strings of `NAME.gguf.inp` (separated by `__ggml_vocab_test__` lines) and the
    /// ids of `NAME.gguf.out`, one line per string.
    static func cases(_ path: String) throws -> [(String, [Int32])] {
        let inp = try String(contentsOfFile: path + ".inp", encoding: .utf8)
        var strings = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
        if strings.last == "" { strings.removeLast() }
        let out = try String(contentsOfFile: path + ".out", encoding: .utf8)
        var lines = out.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        #expect(strings.count == lines.count)
        return zip(strings, lines).map { s, l in (s, l.split(separator: " ").compactMap { Int32($0) }) }
    }

    @Test("llama.cpp's test strings give llama.cpp's ids", .enabled(if: !files.isEmpty), arguments: files)
    func sharedVocabulary(name: String) throws {
        let path = Self.folder.appendingPathComponent(name).path
        let tokenizer = try Tokenizer(file: GGUFFile(path: path))
        var failures = 0
        for (text, expected) in try Self.cases(path) {
            let got = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            if got != expected {
                failures += 1
                Issue.record("\(name): \(text.debugDescription): got \(got), expected \(expected)")
            }
        }
        #expect(failures == 0)
    }
}
