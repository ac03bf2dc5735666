#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds GGUF v3 files. The layout is the one the `gguf` Python package writes (header, metadata
/// in insertion order, tensor infos, padding to the alignment, each tensor's data padded to the
/// alignment), so the same content gives the same bytes.
///
/// ```swift
/// var writer = GGUFWriter(architecture: "qwen3moe")
/// writer.set("qwen3moe.block_count", .uint32(2))
/// try writer.addTensor("token_embd.weight", type: .q8_0, shape: [64, 256], values: weights)
/// try writer.write(to: "tiny.gguf")
/// ```
public struct GGUFWriter: Sendable {
    /// Where a tensor's bytes come from when the file is written.
    public enum TensorData: Sendable {
        /// These exact bytes.
        case bytes([UInt8])
        /// All zero bytes, written as a hole (a sparse file) where the file system allows.
        case zeros
        /// Produced in order by a closure called with chunk index 0, 1, ... until the bytes
        /// add up to the tensor's size (for files too large to hold in memory).
        case chunks(@Sendable (Int) -> [UInt8])
    }

    struct PendingTensor: Sendable {
        var name: String
        var type: GGMLType
        var shape: [Int]
        var byteCount: Int
        var data: TensorData
    }

    /// The metadata to write, in order.
    public private(set) var metadata = GGUFMetadata()
    private(set) var tensors: [PendingTensor] = []

    /// A writer; with an architecture, `general.architecture` is the first entry (as gguf-py does).
    public init(architecture: String? = nil) {
        if let architecture { metadata.set("general.architecture", .string(architecture)) }
    }

    /// Sets a metadata entry (a replaced key keeps its position).
    public mutating func set(_ key: String, _ value: GGUFValue) {
        metadata.set(key, value)
    }

    /// The data alignment `general.alignment` asks for, or 32.
    public var alignment: Int {
        if case .uint32(let a)? = metadata["general.alignment"] { return Int(a) }
        return GGUFFile.defaultAlignment
    }

    /// Adds a tensor from raw bytes in `type`'s layout. `shape` is innermost first.
    public mutating func addTensor(_ name: String, type: GGMLType, shape: [Int], data: TensorData) throws(MoEError) {
        guard !name.isEmpty, !tensors.contains(where: { $0.name == name }) else {
            throw MoEError(.invalidArgument, "tensor name '\(name)' is empty or already added")
        }
        guard (1...GGUFFile.maximumDimensions).contains(shape.count), shape.allSatisfy({ $0 >= 0 }) else {
            throw MoEError(.invalidArgument, "tensor '\(name)' has shape \(shape); expected 1 to 4 non-negative dimensions")
        }
        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw MoEError(.invalidArgument, "tensor '\(name)' shape \(shape) overflows") }
            elements = p
        }
        guard shape[0] % type.blockSize == 0, let bytes = type.byteCount(elements: elements) else {
            throw MoEError(.invalidArgument, "tensor '\(name)': rows of \(shape[0]) are not a whole number of \(type.name) blocks of \(type.blockSize)")
        }
        if case .bytes(let b) = data, b.count != bytes {
            throw MoEError(.invalidArgument, "tensor '\(name)' (\(type.name) \(shape)) needs \(bytes) bytes, got \(b.count)")
        }
        tensors.append(PendingTensor(name: name, type: type, shape: shape, byteCount: bytes, data: data))
    }

    /// Adds a tensor from `Float` values, quantized to `type`.
    public mutating func addTensor(_ name: String, type: GGMLType, shape: [Int], values: [Float]) throws(MoEError) {
        try addTensor(name, type: type, shape: shape, data: .bytes(try type.quantize(values)))
    }

    /// The header: everything before the data section, padded to the alignment.
    public func header() throws(MoEError) -> [UInt8] {
        let align = alignment
        guard align > 0, align & (align - 1) == 0 else {
            throw MoEError(.invalidArgument, "general.alignment \(align) is not a power of two")
        }
        var out: [UInt8] = []
        append(&out, UInt32(0x4655_4747))
        append(&out, GGUFFile.currentVersion)
        append(&out, UInt64(tensors.count))
        append(&out, UInt64(metadata.count))
        for (key, value) in metadata.entries {
            appendString(&out, key)
            append(&out, value.type.rawValue)
            appendValue(&out, value)
        }
        var offset = 0
        for t in tensors {
            appendString(&out, t.name)
            append(&out, UInt32(t.shape.count))
            for d in t.shape { append(&out, UInt64(d)) }
            append(&out, t.type.rawValue)
            append(&out, UInt64(offset))
            offset += padded(t.byteCount, align)
        }
        out.append(contentsOf: repeatElement(0, count: padded(out.count, align) - out.count))
        return out
    }

    /// The whole file in memory (for small files: fixtures, tests).
    public func serialized() throws(MoEError) -> [UInt8] {
        var out = try header()
        for t in tensors {
            switch t.data {
            case .bytes(let b): out.append(contentsOf: b)
            case .zeros: out.append(contentsOf: repeatElement(0, count: t.byteCount))
            case .chunks(let next):
                var written = 0, index = 0
                while written < t.byteCount {
                    let chunk = next(index); index += 1
                    guard !chunk.isEmpty else { break }
                    out.append(contentsOf: chunk.prefix(t.byteCount - written))
                    written += min(chunk.count, t.byteCount - written)
                }
                out.append(contentsOf: repeatElement(0, count: t.byteCount - written))
            }
            out.append(contentsOf: repeatElement(0, count: padded(t.byteCount, alignment) - t.byteCount))
        }
        return out
    }

    /// Writes the file to `path`, streaming tensor data; zero tensors become holes.
    public func write(to path: String) throws(MoEError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MoEError(.io, "cannot create the file", path: path, cause: MappedFile.lastErrno()) }
        defer { close(fd) }
        func put(_ bytes: [UInt8]) throws(MoEError) {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + done, bytes.count - done) }
                guard n > 0 else { throw MoEError(.io, "cannot write the file", path: path, cause: MappedFile.lastErrno()) }
                done += n
            }
        }
        func skip(_ count: Int) throws(MoEError) {
            guard count > 0 else { return }
            guard lseek(fd, off_t(count), SEEK_CUR) >= 0 else {
                throw MoEError(.io, "cannot seek in the file", path: path, cause: MappedFile.lastErrno())
            }
        }
        var total = 0
        let head = try header()
        try put(head)
        total += head.count
        for t in tensors {
            switch t.data {
            case .bytes(let b): try put(b)
            case .zeros: try skip(t.byteCount)
            case .chunks(let next):
                var written = 0, index = 0
                while written < t.byteCount {
                    let chunk = next(index); index += 1
                    guard !chunk.isEmpty else { break }
                    let take = min(chunk.count, t.byteCount - written)
                    try put(take == chunk.count ? chunk : Array(chunk.prefix(take)))
                    written += take
                }
                try skip(t.byteCount - written)
            }
            try skip(padded(t.byteCount, alignment) - t.byteCount)
            total += padded(t.byteCount, alignment)
        }
        guard ftruncate(fd, off_t(total)) == 0 else {
            throw MoEError(.io, "cannot set the file's size", path: path, cause: MappedFile.lastErrno())
        }
    }

    private func padded(_ n: Int, _ align: Int) -> Int { (n + align - 1) / align * align }

    private func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private func appendString(_ out: inout [UInt8], _ s: String) {
        append(&out, UInt64(s.utf8.count))
        out.append(contentsOf: s.utf8)
    }

    private func appendValue(_ out: inout [UInt8], _ value: GGUFValue) {
        switch value {
        case .uint8(let v): append(&out, v)
        case .int8(let v): append(&out, v)
        case .uint16(let v): append(&out, v)
        case .int16(let v): append(&out, v)
        case .uint32(let v): append(&out, v)
        case .int32(let v): append(&out, v)
        case .uint64(let v): append(&out, v)
        case .int64(let v): append(&out, v)
        case .float32(let v): append(&out, v.bitPattern)
        case .float64(let v): append(&out, v.bitPattern)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let s): appendString(&out, s)
        case .array(let a):
            append(&out, a.elementType.rawValue)
            append(&out, UInt64(a.count))
            for e in a.elements { appendValue(&out, e) }
        }
    }
}

#if canImport(Glibc) || canImport(Musl)
@inline(__always) private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
#else
@inline(__always) private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
#endif
