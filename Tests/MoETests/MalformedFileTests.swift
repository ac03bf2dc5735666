import Foundation
import Testing
@testable import MoE

/// Hostile and broken GGUF files: each must give the right typed error, and none may crash.
@Suite("Malformed GGUF files")
struct MalformedFileTests {
    /// Expects `bytes` to fail to open with `code` and a message containing every fragment.
    func expectFailure(_ bytes: [UInt8], _ code: MoEError.Code, _ fragments: String...,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error = openError(bytes) else {
            Issue.record("the file opened, expected \(code) mentioning \(fragments)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.path != nil, "errors name the file", sourceLocation: sourceLocation)
        for f in fragments {
            #expect(error.message.contains(f), "'\(error.message)' should mention '\(f)'", sourceLocation: sourceLocation)
        }
    }

    /// A header with one F32 tensor `t` of `n` elements at `offset`, and `data` bytes of data.
    func oneTensor(shape: [UInt64] = [8], type: UInt32 = 0, offset: UInt64 = 0, data: Int = 32,
                   extraKV: ((inout RawGGUF) -> Void)? = nil, kvs: UInt64 = 0) -> [UInt8] {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: kvs)
        extraKV?(&g)
        g.tensorInfo("t", shape: shape, type: type, offset: offset)
        g.padTo(32)
        g.zeros(data)
        return g.bytes
    }

    @Test("an empty file, a short file and a wrong magic are not GGUF")
    func notGGUF() {
        expectFailure([], .invalidFile, "shorter than the 4-byte magic")
        expectFailure(Array("GG".utf8), .invalidFile, "shorter")
        expectFailure(Array("GGML\u{3}\0\0\0".utf8) + [UInt8](repeating: 0, count: 16), .invalidFile, "magic is 'GGML'")
    }

    @Test("versions other than 2 and 3 and big-endian files are unsupported")
    func versions() {
        for (version, fragment) in [(UInt32(1), "version 1"), (4, "version 4"), (0, "version 0"), (0x0300_0000, "big-endian")] {
            var g = RawGGUF()
            g.header(version: version, tensors: 0, kvs: 0)
            expectFailure(g.bytes, .unsupported, fragment)
        }
        var v2 = RawGGUF()
        v2.header(version: 2, tensors: 0, kvs: 1)
        v2.kvString("general.architecture", "llama")
        #expect(openError(v2.bytes) == nil)
    }

    @Test("counts larger than the file can hold are refused before any allocation")
    func hugeCounts() {
        var g = RawGGUF()
        g.header(tensors: UInt64.max, kvs: 0)
        expectFailure(g.bytes, .invalidFile, "tensor count")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1 << 62)
        expectFailure(g.bytes, .invalidFile, "metadata count")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.u64(UInt64.max)  // key length
        g.zeros(64)
        expectFailure(g.bytes, .invalidFile, "length of the key of metadata entry 0")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("k"); g.u32(8); g.u64(1 << 40)  // string value longer than the file
        expectFailure(g.bytes, .invalidFile, "'k'")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("arr"); g.u32(9); g.u32(10); g.u64(1 << 61)  // 2^61 uint64s: 2^64 bytes
        expectFailure(g.bytes, .invalidFile, "element count of array 'arr'")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("strs"); g.u32(9); g.u32(8); g.u64(3); g.string("a"); g.u64(UInt64.max); g.zeros(64)
        expectFailure(g.bytes, .invalidFile, "element 1 of array 'strs'")
    }

    @Test("bad metadata values name their key")
    func badValues() {
        var g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("weird"); g.u32(13); g.u32(0)
        expectFailure(g.bytes, .invalidFile, "'weird'", "value type 13")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("flag"); g.u32(7); g.u8(2)
        expectFailure(g.bytes, .invalidFile, "'flag'", "BOOL stored as 2")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("flags"); g.u32(9); g.u32(7); g.u64(2); g.u8(1); g.u8(9)
        expectFailure(g.bytes, .invalidFile, "'flags'", "BOOL stored as 9")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 2)
        g.kvUInt32("dup", 1); g.kvUInt32("dup", 2)
        expectFailure(g.bytes, .invalidFile, "'dup' appears twice")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.kvUInt32("", 1)
        expectFailure(g.bytes, .invalidFile, "empty key")
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("deep")
        g.u32(9)
        for _ in 0..<20 { g.u32(9); g.u64(1) }  // arrays of arrays, 20 deep
        g.u32(4); g.u64(0)
        expectFailure(g.bytes, .invalidFile, "nests arrays")
    }

    @Test("general.alignment must be a UINT32 power of two")
    func alignment() {
        for (value, fragment) in [(UInt32(0), "is 0"), (3, "is 3"), (48, "is 48"), (1 << 30, "16 MiB")] {
            expectFailure(oneTensor(extraKV: { $0.kvUInt32("general.alignment", value) }, kvs: 1), .invalidFile, "general.alignment", fragment)
        }
        expectFailure(oneTensor(extraKV: { $0.kvString("general.alignment", "32") }, kvs: 1), .invalidFile, "general.alignment", "STRING")
    }

    @Test("tensor infos are checked: dimensions, overflow, type, block size")
    func tensorInfos() {
        expectFailure(oneTensor(shape: []), .invalidFile, "'t' has 0 dimensions")
        expectFailure(oneTensor(shape: [1, 1, 1, 1, 1]), .invalidFile, "'t' has 5 dimensions")
        expectFailure(oneTensor(shape: [1 << 63]), .invalidFile, "'t' dimension 0")
        expectFailure(oneTensor(shape: [1 << 32, 1 << 32]), .invalidFile, "'t'", "overflows")
        expectFailure(oneTensor(shape: [1 << 62]), .invalidFile, "'t'", "byte size that overflows")  // 2^62 F32s
        // A zero dimension makes the element count 0 but not the row length or the row count.
        expectFailure(oneTensor(shape: [1 << 62, 0]), .invalidFile, "'t'", "byte size that overflows")
        expectFailure(oneTensor(shape: [0, 1 << 32, 1 << 32]), .invalidFile, "'t'", "overflows 64 bits")
        expectFailure(oneTensor(shape: [1 << 32, 0, 1 << 32]), .invalidFile, "'t'", "overflows 64 bits")
        expectFailure(oneTensor(type: 4), .invalidFile, "'t' has type 4")
        expectFailure(oneTensor(type: 99), .invalidFile, "'t' has type 99")
        expectFailure(oneTensor(shape: [30], type: 2), .invalidFile, "'t'", "Q4_0 block size 32")
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.tensorInfo("", shape: [1], type: 0, offset: 0)
        expectFailure(g.bytes, .invalidFile, "empty name")
    }

    @Test("tensor data must be aligned, inside the file and not overlapping")
    func tensorRanges() {
        expectFailure(oneTensor(offset: 8), .invalidFile, "'t'", "offset 8", "alignment 32")
        expectFailure(oneTensor(offset: 1 << 40), .invalidFile, "'t'", "data section")
        expectFailure(oneTensor(shape: [16], data: 32), .invalidFile, "'t'", "0..<64", "only 32 bytes")
        expectFailure(oneTensor(offset: UInt64.max - 31), .invalidFile, "'t'")
        var g = RawGGUF()
        g.header(tensors: 2, kvs: 0)
        g.tensorInfo("a", shape: [16], type: 0, offset: 0)
        g.tensorInfo("b", shape: [8], type: 0, offset: 32)
        g.padTo(32); g.zeros(96)
        expectFailure(g.bytes, .invalidFile, "'a'", "'b'", "overlap")
        g = RawGGUF()
        g.header(tensors: 2, kvs: 0)
        g.tensorInfo("a", shape: [8], type: 0, offset: 0)
        g.tensorInfo("a", shape: [8], type: 0, offset: 32)
        g.padTo(32); g.zeros(64)
        expectFailure(g.bytes, .invalidFile, "'a' appears twice")
        g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.tensorInfo("t", shape: [0], type: 0, offset: 0)  // a header that ends before the data section can start
        #expect(openError(g.bytes)?.message.contains("data section would start") == true)
    }

    @Test("a file cut at any offset gives an error, never a crash", arguments: ["gguf/all-metadata.gguf", "models/tiny-mixtral-q4_0.gguf"])
    func truncationAtEveryOffset(fixture: String) throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: Fixtures.path(fixture))))
        let file = try GGUFFile(path: Fixtures.path(fixture))
        let dataEnd = file.tensors.map { $0.fileOffset + $0.byteCount }.max() ?? 0
        // Every offset through the header, then a stride through the data.
        let cuts = Array(0..<min(file.dataOffset + 64, bytes.count)) + Array(stride(from: file.dataOffset, to: bytes.count, by: 97))
        let path = Fixtures.processScratch.appendingPathComponent("cut-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for cut in cuts {
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: path))
            do {
                _ = try GGUFFile(path: path)
                #expect(cut >= dataEnd, "a file cut at \(cut) of \(bytes.count) opened")
            } catch {
                #expect(error.code == .invalidFile, "cut at \(cut): \(error)")
            }
        }
    }

    @Test("thousands of seeded random mutations never crash the process")
    func mutationLoopNeverCrashes() async {
        await #expect(processExitsWith: .success) {
            try MalformedFileTests.runMutations(iterations: 4000, seed: 0x5EED)
        }
    }

    /// Flips, overwrites and truncates bytes of valid files, then opens each result and uses
    /// everything it exposes. Returns normally unless the process dies.
    static func runMutations(iterations: Int, seed: UInt64) throws {
        let sources = ["gguf/all-metadata.gguf", "models/tiny-qwen3moe-q8_0.gguf"].map { name in
            let path = Fixtures.path(name)
            let header = (try? GGUFFile(path: path))?.dataOffset ?? 4096
            return (try! Array(Data(contentsOf: URL(fileURLWithPath: path))), header)
        }
        var rng = SplitMix(seed: seed)
        let path = Fixtures.processScratch.appendingPathComponent("mutant-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var opened = 0
        for i in 0..<iterations {
            var (bytes, headerEnd) = sources[i % sources.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                // Mostly inside the header, where the numbers that steer parsing live.
                let at = Int(rng.next() % UInt64(rng.next() % 8 == 0 ? bytes.count : min(headerEnd, bytes.count)))
                switch rng.next() % 4 {
                case 0: bytes[at] ^= UInt8(1 << (rng.next() % 8))
                case 1: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 2: bytes[at] = [0x00, 0xFF, 0x7F, 0x80][Int(rng.next() % 4)]
                default: bytes.removeSubrange(at...)
                }
                if bytes.isEmpty { break }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            guard let file = try? GGUFFile(path: path) else { continue }
            opened += 1
            // Use everything a caller could: every value, every view, the summary.
            for (_, value) in file.metadata.entries {
                if case .array(let a) = value { _ = a.elements; _ = a.strings; _ = a.description }
            }
            _ = ModelSummary(file: file).json.serialized()
            for t in file.tensors where t.type.traits.dequantizable && t.byteCount < 1 << 20 {
                _ = try? file.view(t).dequantized()
            }
        }
        print("mutations: \(iterations), opened after mutation: \(opened)")
    }
}
