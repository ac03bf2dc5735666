import Foundation
import Testing
@testable import MoE

@Suite("GGUF writer")
struct GGUFWriterTests {
    /// Every metadata value type, including empty and nested arrays.
    static let everyValue: [(String, GGUFValue)] = {
        [
            ("v.uint8", .uint8(200)), ("v.int8", .int8(-100)), ("v.uint16", .uint16(60000)),
            ("v.int16", .int16(-30000)), ("v.uint32", .uint32(4_000_000_000)), ("v.int32", .int32(-2_000_000_000)),
            ("v.float32", .float32(-0.125)), ("v.bool", .bool(true)), ("v.string", .string("ü 世界 🙂\n\"")),
            ("v.uint64", .uint64(UInt64.max)), ("v.int64", .int64(Int64.min)), ("v.float64", .float64(.pi)),
            ("v.empty.string", .string("")),
            ("v.array.empty", .array(try! GGUFArray(.int32, []))),
            ("v.array.strings", .array(GGUFArray(strings: ["x", "", "✓"]))),
            ("v.array.float32", .array(try! GGUFArray(.float32, [.float32(1), .float32(-2.5)]))),
            ("v.array.bool", .array(try! GGUFArray(.bool, [.bool(false), .bool(true)]))),
            ("v.array.uint64", .array(try! GGUFArray(.uint64, [.uint64(0), .uint64(1 << 63)]))),
            ("v.array.nested", .array(try! GGUFArray(.array, [
                .array(try! GGUFArray(.string, [.string("a")])),
                .array(try! GGUFArray(.string, [])),
            ]))),
        ]
    }()

    @Test("every metadata value type survives writer -> reader")
    func metadataRoundTrip() throws {
        var w = GGUFWriter(architecture: "test")
        for (k, v) in Self.everyValue { w.set(k, v) }
        let file = try GGUFFile(path: Fixtures.write(try w.serialized()))
        #expect(file.metadata == w.metadata)
        #expect(file.metadata["v.float64"] == .float64(.pi))
        #expect(try file.metadata.array("v.array.strings").strings == ["x", "", "✓"])
    }

    @Test("every quantizable tensor type survives writer -> reader", arguments: GGMLType.quantizable)
    func tensorRoundTrip(type: GGMLType) throws {
        let n = 512
        let values = (0..<n).map { Float(sin(Double($0) * 0.37)) }
        let bytes = try type.quantize(values)
        var w = GGUFWriter(architecture: "test")
        try w.addTensor("t", type: type, shape: [256, 2], data: .bytes(bytes))
        let file = try GGUFFile(path: Fixtures.write(try w.serialized()))
        let view = try file.view("t")
        #expect(view.type == type && view.shape == [256, 2])
        #expect(Array(view.bytes) == bytes)
        #expect(try view.dequantized() == (try type.dequantize(bytes, count: n)))
    }

    @Test("raw blocks of every known type survive writer -> reader", arguments: GGMLType.allKnown)
    func rawBlocksRoundTrip(type: GGMLType) throws {
        let elements = 2 * max(type.blockSize, 256)
        let count = type.byteCount(elements: elements)!
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var w = GGUFWriter(architecture: "test")
        try w.addTensor("raw", type: type, shape: [elements / 2, 2], data: .bytes(bytes))
        let file = try GGUFFile(path: Fixtures.write(try w.serialized()))
        #expect(Array(try file.view("raw").bytes) == bytes)
    }

    @Test("writes the same bytes as gguf-py for the same content")
    func matchesGGUFPyByteForByte() throws {
        let reference = try GGUFFile(path: Fixtures.path("gguf/all-metadata.gguf"))
        var w = GGUFWriter()
        for (k, v) in reference.metadata.entries { w.set(k, v) }
        for t in reference.tensors {
            try w.addTensor(t.name, type: t.type, shape: t.shape, data: .bytes(Array(reference.view(t).bytes)))
        }
        let ours = try w.serialized()
        let theirs = try Array(Data(contentsOf: URL(fileURLWithPath: reference.path)))
        #expect(ours.count == theirs.count)
        #expect(ours == theirs)
    }

    @Test("streams to disk: chunks, zero holes and padding give the in-memory bytes")
    func streamingWriteMatchesSerialized() throws {
        var w = try sampleWriter()
        w.set("general.alignment", .uint32(64))
        try w.addTensor("zeros", type: .f16, shape: [100], data: .zeros)
        try w.addTensor("chunked", type: .q8_0, shape: [96], data: .chunks({ i in i < 3 ? [UInt8](repeating: UInt8(i + 1), count: 34) : [] }))
        let path = Fixtures.processScratch.appendingPathComponent("streamed.gguf").path
        try w.write(to: path)
        let written = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(written == (try w.serialized()))
        let file = try GGUFFile(path: path)
        #expect(file.alignment == 64)
        #expect(file.tensors.allSatisfy { $0.fileOffset % 64 == 0 })
        #expect(Array(try file.view("chunked").bytes) == [UInt8](repeating: 1, count: 34) + [UInt8](repeating: 2, count: 34) + [UInt8](repeating: 3, count: 34))
    }

    @Test("refuses tensors it could not write correctly")
    func rejectsBadTensors() throws {
        var w = GGUFWriter()
        #expect(throws: MoEError.self) { try w.addTensor("q", type: .q4_0, shape: [30], data: .zeros) }  // not whole blocks
        #expect(throws: MoEError.self) { try w.addTensor("f", type: .f32, shape: [4], data: .bytes([0, 0])) }  // wrong size
        #expect(throws: MoEError.self) { try w.addTensor("d", type: .f32, shape: [1, 1, 1, 1, 1], data: .zeros) }  // 5 dims
        try w.addTensor("ok", type: .f32, shape: [1], data: .zeros)
        #expect(throws: MoEError.self) { try w.addTensor("ok", type: .f32, shape: [1], data: .zeros) }  // duplicate
        w.set("general.alignment", .uint32(48))
        #expect(throws: MoEError.self) { try w.header() }
    }
}
