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

/// swift-moe's own test strings (English, code, whitespace runs, digits, emoji, CJK, odd Unicode,
/// special-token text), tokenized by llama.cpp on every vocabulary `tools/make_text_fixtures.py`
/// found; each vocabulary present here is compared exactly, in plain and special mode.
@Suite("Tokenizer parity on our own strings")
struct OwnStringParityTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let path: String
        var description: String { name }
    }

    nonisolated(unsafe) static let fixture = Fixtures.json("text/tokenizer-parity.json") as! [String: Any]
    static let strings = fixture["strings"] as! [String]
    nonisolated(unsafe) static let vocabularies = fixture["vocabularies"] as! [String: [String: Any]]

    /// Folders searched for the recorded vocabularies (extra ones through `LLAMA_VOCAB_DIR`).
    static let folders: [URL] = {
        var f = [Fixtures.root.appendingPathComponent("text"), Fixtures.root.appendingPathComponent("models"),
                 Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models"),
                 SharedVocabularyTests.folder]
        if let extra = ProcessInfo.processInfo.environment["LLAMA_VOCAB_DIR"], !extra.isEmpty {
            f.append(URL(fileURLWithPath: extra))
        }
        return f
    }()

    static let cases: [Case] = vocabularies.keys.sorted().compactMap { name in
        for folder in folders {
            let p = folder.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: p) { return Case(name: name, path: p) }
        }
        return nil
    }

    @Test("the repo carries at least one byte-level BPE and one SentencePiece vocabulary")
    func carriedVocabularies() {
        #expect(Self.cases.contains { $0.name == "spm-austen.gguf" })
        #expect(Self.cases.contains { $0.name == "tiny-qwen3moe-q8_0.gguf" })
    }

    @Test("ids equal llama.cpp's, plain and with special tokens", arguments: cases)
    func parity(_ c: Case) throws {
        let file = try GGUFFile(path: c.path)
        let recorded = Self.vocabularies[c.name]!
        #expect(SHA256.hex(Array(try Data(contentsOf: URL(fileURLWithPath: c.path)))) == recorded["sha256"] as! String,
                "\(c.name) is not the file the ids were recorded on")
        let loaded = Result { () throws(MoEError) -> Vocabulary in try Vocabulary(file: file) }
        // WordPiece / Unigram vocabularies are not a tokenizer swift-moe claims: they must say so.
        if case .failure(let e) = loaded, e.code == .unsupported { return }
        let vocabulary = try loaded.get()
        let tokenizer = try Tokenizer(vocabulary)
        let plain = recorded["plain"] as! [[Int]]
        let special = recorded["special"] as! [[Int]]
        for (i, s) in Self.strings.enumerated() {
            #expect(tokenizer.encode(s, addSpecial: false, parseSpecial: false).map(Int.init) == plain[i], "\(c.name) plain \(s.debugDescription)")
            #expect(tokenizer.encode(s, addSpecial: true, parseSpecial: true).map(Int.init) == special[i], "\(c.name) special \(s.debugDescription)")
        }
    }

    @Test("decoding the ids gives the text back", arguments: cases)
    func roundTrip(_ c: Case) throws {
        guard let vocabulary = try? Vocabulary(file: GGUFFile(path: c.path)) else { return }
        // A vocabulary whose merges make texts that are not tokens loses bytes in llama.cpp too
        // (the tiny test models have three merges): only complete vocabularies round-trip.
        let complete = vocabulary.mergeRanks.keys.allSatisfy { key in
            let sep = key[1...].firstIndex(of: 0x20)!
            return vocabulary.ids[Array(key[..<sep]) + Array(key[(sep + 1)...])] != nil
        }
        guard complete else { return }
        let tokenizer = try Tokenizer(vocabulary)
        for s in Self.strings {
            let ids = tokenizer.encode(s, addSpecial: false)
            var text = tokenizer.decode(ids, special: true)
            if vocabulary.kind == .sentencePiece && vocabulary.addSpacePrefix && text.hasPrefix(" ") { text.removeFirst() }
            // Byte-level BPE is lossless; SentencePiece is lossless when every byte has a token.
            if vocabulary.kind == .bytePairEncoding || vocabulary.unk == nil || !ids.contains(vocabulary.unk!) {
                #expect(text == s, "\(c.name) \(s.debugDescription)")
            }
        }
    }
}

/// Vocabulary metadata that is odd or broken: warnings and errors, never a crash.
@Suite("Vocabulary validation")
struct VocabularyValidationTests {
    func metadata(model: String = "gpt2", pre: String? = "gpt-2", tokens: [String] = ["a", "b", "ab", " ", "<|endoftext|>"],
                  merges: [String]? = ["a b"], types: [Int32]? = nil, extra: [(String, GGUFValue)] = []) throws -> GGUFMetadata {
        var m = GGUFMetadata()
        m.set("tokenizer.ggml.model", .string(model))
        if let pre { m.set("tokenizer.ggml.pre", .string(pre)) }
        m.set("tokenizer.ggml.tokens", .array(GGUFArray(strings: tokens)))
        if let merges { m.set("tokenizer.ggml.merges", .array(GGUFArray(strings: merges))) }
        if let types { m.set("tokenizer.ggml.token_type", .array(try GGUFArray(.int32, types.map { .int32($0) }))) }
        for (k, v) in extra { m.set(k, v) }
        return m
    }

    @Test("an unknown pre-tokenizer name is a warning and the GPT-2 rule; a missing one llama.cpp's default")
    func unknownPreTokenizer() throws {
        let v = try Vocabulary(metadata: metadata(pre: "no-such-rule"))
        #expect(v.preTokenizerRule?.family == "gpt-2")
        #expect(v.warning?.contains("no-such-rule") == true)
        let d = try Vocabulary(metadata: metadata(pre: nil))
        #expect(d.preTokenizerRule?.family == "default" && d.warning != nil)
        #expect(try Vocabulary(metadata: metadata(pre: "qwen2")).warning == nil)
        #expect(try Tokenizer(Vocabulary(metadata: metadata(pre: "no-such-rule"))).encode("ab", addSpecial: false) == [2])
    }

    @Test("every rule in the table compiles, and its names are unique")
    func tableCompiles() throws {
        var seen = Set<String>()
        for rule in PreTokenizerRule.all {
            _ = try PreTokenizer(rule)
            for n in rule.names { #expect(seen.insert(n).inserted, "\(n) appears twice") }
        }
    }

    @Test("broken vocabularies are errors that name the key")
    func brokenVocabularies() throws {
        func code(_ m: GGUFMetadata) -> MoEError.Code? {
            do { _ = try Vocabulary(metadata: m); return nil } catch { return error.code }
        }
        #expect(code(try metadata(model: "bert")) == .unsupported)
        #expect(code(try metadata(merges: nil)) == .notFound)
        #expect(code(try metadata(merges: ["ab"])) == .invalidFile)
        #expect(code(try metadata(types: [1, 1])) == .invalidFile)
        #expect(code(try metadata(tokens: [])) == .invalidFile)
        #expect(code(try metadata(extra: [("tokenizer.ggml.add_bos_token", .bool(true))])) == .invalidFile)  // BOS asked, none given
        // An out-of-range special id is ignored, as llama.cpp does.
        let v = try Vocabulary(metadata: metadata(extra: [("tokenizer.ggml.eos_token_id", .uint32(999))]))
        #expect(v.eos == nil)
        // Encoding never yields an id outside the vocabulary, whatever the text.
        let t = try Tokenizer(v)
        for text in ["\u{0}\u{FFFF}", String(repeating: " ", count: 5000), "🦙🦙", "a\u{301}b"] {
            #expect(t.encode(text).allSatisfy { v.contains($0) })
        }
    }
}
