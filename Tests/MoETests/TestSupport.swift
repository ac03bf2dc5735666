import Foundation
@testable import MoE

/// Paths of committed fixtures and scratch files for tests.
enum Fixtures {
    /// `Tests/Fixtures`, found from this source file (tests run from a checkout).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// One scratch directory for this test process.
    static let processScratch: URL = scratchDirectory()

    /// A fresh directory under the system temp directory.
    static func scratchDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("swift-moe-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `bytes` to a new scratch file and returns its path.
    static func write(_ bytes: [UInt8], name: String = "\(UUID().uuidString).gguf") -> String {
        let url = processScratch.appendingPathComponent(name)
        try! Data(bytes).write(to: url)
        return url.path
    }

    /// Reads a JSON fixture.
    static func json(_ relative: String) -> Any {
        try! JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent(relative)))
    }
}

/// Builds GGUF bytes field by field, so tests can write exactly the malformed values they need.
struct RawGGUF {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes.append(contentsOf: Array("GGUF".utf8)); u32(version); u64(tensors); u64(kvs)
    }
    mutating func kvString(_ key: String, _ value: String) { string(key); u32(8); string(value) }
    mutating func kvUInt32(_ key: String, _ value: UInt32) { string(key); u32(4); u32(value) }
    mutating func tensorInfo(_ name: String, shape: [UInt64], type: UInt32, offset: UInt64) {
        string(name); u32(UInt32(shape.count)); shape.forEach { u64($0) }; u32(type); u64(offset)
    }
    mutating func padTo(_ alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
}

/// Opens `bytes` as a GGUF file and returns the error it gives (nil if it opened).
func openError(_ bytes: [UInt8]) -> MoEError? {
    let path = Fixtures.write(bytes)
    defer { try? FileManager.default.removeItem(atPath: path) }
    do {
        _ = try GGUFFile(path: path)
        return nil
    } catch {
        return error
    }
}

/// A small valid file with metadata of several types and tensors of several types.
func sampleWriter() throws -> GGUFWriter {
    var w = GGUFWriter(architecture: "qwen3moe")
    w.set("general.name", .string("sample"))
    w.set("qwen3moe.block_count", .uint32(2))
    w.set("qwen3moe.expert_count", .uint32(8))
    w.set("tokenizer.ggml.tokens", .array(GGUFArray(strings: ["a", "b", "<s>"])))
    try w.addTensor("a", type: .f32, shape: [8, 2], values: (0..<16).map { Float($0) })
    try w.addTensor("b", type: .q8_0, shape: [64, 2], values: (0..<128).map { sin(Float($0)) })
    try w.addTensor("c", type: .q4_K, shape: [256], values: (0..<256).map { cos(Float($0)) })
    return w
}

/// The NUL-terminated text in a C buffer the API filled.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
