import Foundation
import Testing
@testable import MoE

@Suite("GGUF reader")
struct GGUFReaderTests {
    let file: GGUFFile
    let expected: [String: Any]

    init() throws {
        file = try GGUFFile(path: Fixtures.path("gguf/all-metadata.gguf"))
        expected = Fixtures.json("gguf/all-metadata.json") as! [String: Any]
    }

    @Test("reads the header and layout gguf-py reports")
    func headerMatchesGGUFPy() {
        #expect(file.version == 3)
        #expect(file.alignment == expected["alignment"] as! Int)
        #expect(file.dataOffset == expected["data_offset"] as! Int)
        #expect(file.metadata.architecture == "fixture")
    }

    @Test("reads every metadata value type as gguf-py does")
    func metadataMatchesGGUFPy() throws {
        let fields = expected["fields"] as! [[String: Any]]
        #expect(file.metadata.count == fields.count)
        for (entry, field) in zip(file.metadata.entries, fields) {
            #expect(entry.key == field["key"] as! String)
            let types = field["types"] as! [String]
            #expect(entry.value.type.description == types[0], "\(entry.key)")
            #expect(flatten(entry.value) == field["flat"] as! [String], "\(entry.key)")
        }
    }

    @Test("keeps nested arrays nested")
    func nestedArrays() throws {
        let nested = try file.metadata.array("test.array.nested")
        #expect(nested.elementType == .array)
        let inner = nested.elements.map { v -> [Int] in
            guard case .array(let a) = v else { return [] }
            return a.integers ?? []
        }
        #expect(inner == [[1, 2], [3], [4, 5, 6]])
        let strings = try file.metadata.array("test.array.nested.strings")
        #expect(strings.elements.compactMap { if case .array(let a) = $0 { a.strings } else { nil } } == [["x", "y"], ["z"]])
    }

    @Test("reads every tensor info as gguf-py does")
    func tensorsMatchGGUFPy() {
        let tensors = expected["tensors"] as! [[String: Any]]
        #expect(file.tensors.count == tensors.count)
        for (t, e) in zip(file.tensors, tensors) {
            #expect(t.name == e["name"] as! String)
            #expect(t.type.name == e["type"] as! String)
            #expect(t.shape == e["shape"] as! [Int])
            #expect(t.fileOffset == e["offset"] as! Int)
            #expect(t.byteCount == e["n_bytes"] as! Int)
        }
    }

    @Test("typed metadata access converts, expands {arch} and names the key in errors")
    func typedAccess() throws {
        #expect(try file.metadata.int("test.uint8") == 255)
        #expect(try file.metadata.int("test.int64") == Int(Int64.min))
        #expect(throws: MoEError.self) { try file.metadata.int("test.uint64") }  // 2^64-1 does not fit Int
        #expect(try file.metadata.uint32("test.uint32") == UInt32.max)
        #expect(try file.metadata.double("test.float32") == 3.25)
        #expect(try file.metadata.string("test.string") == "Grüße, 世界 🙂")
        #expect(try file.metadata.bool("test.bool.true"))
        #expect(try file.metadata.int("test.missing", default: 7) == 7)
        do {
            _ = try file.metadata.string("test.uint8")
            Issue.record("a UINT8 read as a string must fail")
        } catch {
            #expect(error.code == .typeMismatch)
            #expect(error.message.contains("test.uint8"))
        }
        do {
            _ = try file.metadata.int("{arch}.expert_count")
            Issue.record("a missing key must fail")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message.contains("fixture.expert_count"))
        }
    }

    @Test("tensor views are zero-copy slices of the mapping")
    func viewsPointIntoTheMapping() throws {
        let view = try file.view("q8_0")
        #expect(view.bytes.baseAddress == file.mapping.bytes.baseAddress! + view.fileOffset)
        #expect(view.rowCount == 4 && view.rowLength == 64 && view.rowBytes == 68)
        let row = try view.row(3)
        #expect(row.baseAddress == view.bytes.baseAddress! + 3 * 68)
        #expect(throws: MoEError.self) { try view.row(4) }
        #expect(throws: MoEError.self) { try file.view("nope") }
    }

    @Test("stacked expert tensors slice into per-expert matrices")
    func expertSlices() throws {
        let model = try GGUFFile(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"))
        let gate = try model.view("blk.0.ffn_gate_exps.weight")
        #expect(gate.shape == [64, 32, 8])
        let e5 = try gate.slice(5)
        #expect(e5.shape == [64, 32])
        #expect(e5.byteCount == gate.byteCount / 8)
        #expect(e5.fileOffset == gate.fileOffset + 5 * e5.byteCount)
        #expect(throws: MoEError.self) { try gate.slice(8) }
    }

    @Test("opening a 47 GB file reads only its header")
    func opensHugeSparseFile() throws {
        var w = GGUFWriter(architecture: "llama")
        // 18 Mixtral-sized stacks of 80 experts: 47 GB of Q4_0 zeros, written as a hole.
        for layer in 0..<18 {
            try w.addTensor("blk.\(layer).ffn_up_exps.weight", type: .q4_0, shape: [4096, 14336, 80], data: .zeros)
        }
        try w.addTensor("output_norm.weight", type: .f32, shape: [4096], data: .zeros)
        let directory = Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("huge.gguf").path
        try w.write(to: path)
        let file = try GGUFFile(path: path)
        #expect(file.mapping.size > 44 << 30)
        #expect(file.tensors[0].byteCount == 4096 / 32 * 18 * 14336 * 80)
        let summary = ModelSummary(file: file)
        #expect(summary.routedExpertBytes == 18 * file.tensors[0].byteCount)
    }
}

/// Flattens a value the way gguf-py's `contents()` does (nested arrays become one list).
func flatten(_ v: GGUFValue) -> [String] {
    switch v {
    case .array(let a): a.elements.flatMap(flatten)
    case .float32(let f): [String(Double(f))]
    case .float64(let d): [String(d)]
    case .bool(let b): [String(b)]
    default: [v.description]
    }
}

