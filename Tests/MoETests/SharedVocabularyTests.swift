import Foundation
import Testing
@testable import MoE

/// GGUF files written by llama.cpp's own converter (vocabulary-only, from ../shared/vocab when the
/// checkout has it): the reader opens them and their tokenizer arrays are consistent.
@Suite("llama.cpp-written vocabulary files")
struct SharedVocabularyTests {
    static let folder = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/vocab")
    static let files: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
        .filter { $0.hasSuffix(".gguf") }.sorted()

    @Test("each file opens, and tokens, scores, types and expected ids agree", .enabled(if: !files.isEmpty), arguments: files)
    func vocabulary(name: String) throws {
        let path = Self.folder.appendingPathComponent(name).path
        let file = try GGUFFile(path: path)
        let m = file.metadata
        let tokens = try m.array("tokenizer.ggml.tokens")
        #expect(tokens.elementType == .string)
        let strings = try #require(tokens.strings)
        #expect(strings.count == tokens.count)
        #expect(["gpt2", "llama"].contains(try m.string("tokenizer.ggml.model")))
        if m.contains("tokenizer.ggml.scores") { #expect(try m.array("tokenizer.ggml.scores").count == tokens.count) }
        if m.contains("tokenizer.ggml.token_type") { #expect(try m.array("tokenizer.ggml.token_type").count == tokens.count) }
        if m.contains("tokenizer.ggml.merges") { #expect(try m.array("tokenizer.ggml.merges").strings?.allSatisfy { $0.contains(" ") } == true) }
        // Every id llama.cpp produced for the test strings names a token of this vocabulary.
        let expected = try String(contentsOfFile: path + ".out", encoding: .utf8)
        let ids = expected.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        #expect(!ids.isEmpty)
        #expect(ids.allSatisfy { $0 >= 0 && $0 < tokens.count })
        let summary = ModelSummary(file: file)
        #expect(summary.vocabularySize == tokens.count)
    }
}
