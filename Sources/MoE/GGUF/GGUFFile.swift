/// An open GGUF file: its header, metadata and tensor infos, parsed and validated, over one
/// read-only memory mapping. Opening reads only the header pages; tensor data is never touched
/// until a view of it is used.
///
/// ```swift
/// let file = try GGUFFile(path: "model.gguf")
/// let experts = try file.metadata.int("{arch}.expert_count")
/// let gate = try file.view("blk.0.ffn_gate_exps.weight")
/// ```
public final class GGUFFile: Sendable {
    /// The lowest format version swift-moe reads.
    public static let minimumVersion: UInt32 = 2
    /// The highest format version swift-moe reads (and the one it writes).
    public static let currentVersion: UInt32 = 3
    /// The data alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// The most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
    public static let maximumDimensions = 4
    /// How deeply arrays may nest inside arrays before a file is refused.
    public static let maximumArrayDepth = 8

    /// The path the file was opened with.
    public var path: String { mapping.path }
    /// The format version (2 or 3).
    public let version: UInt32
    /// The key-value metadata, in file order.
    public let metadata: GGUFMetadata
    /// Every tensor, in file order.
    public let tensors: [GGUFTensorInfo]
    /// The data alignment (`general.alignment`, default 32).
    public let alignment: Int
    /// Offset of the data section from the start of the file.
    public let dataOffset: Int
    /// The mapping every view reads from.
    public let mapping: MappedFile
    private let tensorIndex: [String: Int]

    /// Opens, maps and validates the GGUF file at `path`. Every failure is an `MoEError` that
    /// names the file and what was wrong.
    public init(path: String) throws(MoEError) {
        let mapping = try MappedFile(path: path)
        do {
            let parsed = try GGUFParser.parse(mapping)
            self.mapping = mapping
            self.version = parsed.version
            self.metadata = parsed.metadata
            self.tensors = parsed.tensors
            self.alignment = parsed.alignment
            self.dataOffset = parsed.dataOffset
            self.tensorIndex = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
        } catch {
            throw error.at(path: path)
        }
    }

    /// The info of the tensor called `name`, or nil.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// A zero-copy view of the tensor called `name`; a missing tensor is a `.notFound` error.
    public func view(_ name: String) throws(MoEError) -> TensorView {
        guard let info = tensorInfo(name) else {
            throw MoEError(.notFound, "tensor '\(name)' is missing", path: path)
        }
        return view(info)
    }

    /// A zero-copy view of a tensor of this file.
    public func view(_ info: GGUFTensorInfo) -> TensorView {
        TensorView(file: mapping, name: info.name, type: info.type, shape: info.shape,
                   fileOffset: info.fileOffset, byteCount: info.byteCount)
    }
}

/// The parsing and validation of a mapped GGUF file. Every read is bounds-checked; every count,
/// length and size is checked against what the file can hold before it is used.
enum GGUFParser {
    struct Parsed {
        var version: UInt32
        var metadata: GGUFMetadata
        var tensors: [GGUFTensorInfo]
        var alignment: Int
        var dataOffset: Int
    }

    static let magic: UInt32 = 0x4655_4747  // "GGUF" read little-endian
    static let maximumNameBytes = 65_536

    static func parse(_ file: MappedFile) throws(MoEError) -> Parsed {
        var cursor = ByteCursor(file.bytes)
        guard file.size >= 4 else {
            throw MoEError(.invalidFile, "not a GGUF file: \(file.size) bytes is shorter than the 4-byte magic")
        }
        let magic = try cursor.read(UInt32.self, "the magic")
        guard magic == GGUFParser.magic else {
            let shown = (0..<4).map { i in
                let b = UInt8(truncatingIfNeeded: magic >> (8 * UInt32(i)))
                return (32..<127).contains(b) ? String(UnicodeScalar(b)) : "\\x" + String(b, radix: 16)
            }.joined()
            throw MoEError(.invalidFile, "not a GGUF file: the magic is '\(shown)', expected 'GGUF'")
        }
        let version = try cursor.read(UInt32.self, "the version")
        if version == 1 {
            throw MoEError(.unsupported, "GGUF version 1 is not supported (32-bit counts); versions 2 and 3 are")
        }
        if version.byteSwapped >= 1 && version.byteSwapped <= 3 {
            throw MoEError(.unsupported, "this is a big-endian GGUF file (version \(version.byteSwapped)); only little-endian files are supported")
        }
        guard version >= GGUFFile.minimumVersion && version <= GGUFFile.currentVersion else {
            throw MoEError(.unsupported, "GGUF version \(version) is not supported; versions 2 and 3 are")
        }
        // The smallest tensor info: name length 8 + n_dims 4 + one dim 8 + type 4 + offset 8.
        let tensorCount = try cursor.readCount("the tensor count", minimumItemSize: 32)
        let kvCountRaw = try cursor.read(UInt64.self, "the metadata count")
        // The smallest entry: key length 8 + type 4 + one byte of value.
        let kvLimit = UInt64(max(cursor.remaining - tensorCount * 32, 0) / 13)
        guard kvCountRaw <= kvLimit else {
            throw MoEError(.invalidFile, "the metadata count is \(kvCountRaw), but the \(cursor.remaining) bytes left in the file hold at most \(kvLimit) entries")
        }

        var metadata = GGUFMetadata()
        for i in 0..<Int(kvCountRaw) {
            let key = try cursor.readString("the key of metadata entry \(i)")
            guard !key.isEmpty else {
                throw MoEError(.invalidFile, "metadata entry \(i) has an empty key")
            }
            let rawType = try cursor.read(UInt32.self, "the type of metadata key '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw MoEError(.invalidFile, "metadata key '\(key)' has value type \(rawType), expected 0...12")
            }
            let value = try readValue(of: type, from: &cursor, file: file, key: key, depth: 0)
            try metadata.append(key, value)
        }

        var alignment = GGUFFile.defaultAlignment
        if let value = metadata["general.alignment"] {
            guard case .uint32(let a) = value else {
                throw MoEError(.invalidFile, "metadata key 'general.alignment' is \(value.type), expected UINT32")
            }
            guard a > 0, a & (a - 1) == 0, a <= 1 << 24 else {
                throw MoEError(.invalidFile, "metadata key 'general.alignment' is \(a), expected a power of two up to 16 MiB")
            }
            alignment = Int(a)
        }

        struct RawTensor { var name: String; var shape: [Int]; var type: GGMLType; var offset: Int; var bytes: Int }
        var raw: [RawTensor] = []
        raw.reserveCapacity(tensorCount)
        var names = Set<String>()
        for i in 0..<tensorCount {
            let name = try cursor.readString("the name of tensor \(i)")
            guard !name.isEmpty else { throw MoEError(.invalidFile, "tensor \(i) has an empty name") }
            guard name.utf8.count <= maximumNameBytes else {
                throw MoEError(.invalidFile, "tensor \(i) has a name of \(name.utf8.count) bytes, expected at most \(maximumNameBytes)")
            }
            guard names.insert(name).inserted else {
                throw MoEError(.invalidFile, "tensor '\(name)' appears twice")
            }
            let nDims = try cursor.read(UInt32.self, "the dimension count of tensor '\(name)'")
            guard nDims >= 1 && nDims <= UInt32(GGUFFile.maximumDimensions) else {
                throw MoEError(.invalidFile, "tensor '\(name)' has \(nDims) dimensions, expected 1...\(GGUFFile.maximumDimensions)")
            }
            var shape: [Int] = []
            // The product of the non-zero dimensions must fit too: with a zero dimension the
            // element count is 0, but the row length and the row count are still used apart.
            var elements = 1, nonZero = 1
            for d in 0..<Int(nDims) {
                let dim = try cursor.read(UInt64.self, "dimension \(d) of tensor '\(name)'")
                guard dim <= UInt64(Int.max) else {
                    throw MoEError(.invalidFile, "tensor '\(name)' dimension \(d) is \(dim), which does not fit a signed 64-bit count")
                }
                let (product, overflow) = nonZero.multipliedReportingOverflow(by: max(Int(dim), 1))
                guard !overflow else {
                    throw MoEError(.invalidFile, "tensor '\(name)' has shape \(shape + [Int(dim)])..., whose element count overflows 64 bits")
                }
                nonZero = product
                elements *= Int(dim)
                shape.append(Int(dim))
            }
            let rawType = try cursor.read(UInt32.self, "the type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw MoEError(.invalidFile, "tensor '\(name)' has type \(rawType), which is not a known ggml type")
            }
            guard shape[0] % type.blockSize == 0 else {
                throw MoEError(.invalidFile, "tensor '\(name)' has rows of \(shape[0]) elements, which is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            guard let bytes = type.byteCount(elements: elements), type.byteCount(elements: shape[0]) != nil else {
                throw MoEError(.invalidFile, "tensor '\(name)' of shape \(shape) and type \(type.name) has a byte size that overflows 64 bits")
            }
            let offset = try cursor.read(UInt64.self, "the data offset of tensor '\(name)'")
            guard offset <= UInt64(Int.max) else {
                throw MoEError(.invalidFile, "tensor '\(name)' has data offset \(offset), beyond any file")
            }
            guard Int(offset) % alignment == 0 else {
                throw MoEError(.invalidFile, "tensor '\(name)' has data offset \(offset), which is not a multiple of the alignment \(alignment)")
            }
            raw.append(RawTensor(name: name, shape: shape, type: type, offset: Int(offset), bytes: bytes))
        }

        // The data section starts at the next multiple of the alignment (when there are tensors).
        let headerEnd = cursor.offset
        let padded = (headerEnd + alignment - 1) / alignment * alignment
        let dataOffset = tensorCount == 0 ? headerEnd : padded
        if tensorCount > 0 && dataOffset > file.size {
            throw MoEError(.invalidFile, "truncated: the data section would start at offset \(dataOffset), but the file has \(file.size) bytes")
        }
        let dataBytes = file.size - min(dataOffset, file.size)

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(raw.count)
        for t in raw {
            guard t.offset <= dataBytes, t.bytes <= dataBytes - t.offset else {
                throw MoEError(.invalidFile, "tensor '\(t.name)' (\(t.type.name) \(t.shape)) needs bytes \(t.offset)..<\(t.offset &+ t.bytes) of the data section, but it has only \(dataBytes) bytes (the file is truncated or the offset is wrong)")
            }
            tensors.append(GGUFTensorInfo(name: t.name, shape: t.shape, type: t.type, offset: t.offset,
                                          fileOffset: dataOffset + t.offset, byteCount: t.bytes))
        }
        let byOffset = tensors.sorted { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.byteCount > b.offset && b.byteCount > 0 {
            throw MoEError(.invalidFile, "tensors '\(a.name)' (bytes \(a.offset)..<\(a.offset + a.byteCount)) and '\(b.name)' (from byte \(b.offset)) overlap in the data section")
        }
        return Parsed(version: version, metadata: metadata, tensors: tensors, alignment: alignment, dataOffset: dataOffset)
    }

    /// Reads one value of `type`. Arrays are validated element by element (strings' lengths,
    /// nested arrays' headers) but stay in the mapping.
    static func readValue(of type: GGUFValueType, from cursor: inout ByteCursor, file: MappedFile,
                          key: String, depth: Int) throws(MoEError) -> GGUFValue {
        func what() -> String { "the value of metadata key '\(key)'" }
        switch type {
        case .uint8: return .uint8(try cursor.read(UInt8.self, what()))
        case .int8: return .int8(try cursor.read(Int8.self, what()))
        case .uint16: return .uint16(try cursor.read(UInt16.self, what()))
        case .int16: return .int16(try cursor.read(Int16.self, what()))
        case .uint32: return .uint32(try cursor.read(UInt32.self, what()))
        case .int32: return .int32(try cursor.read(Int32.self, what()))
        case .uint64: return .uint64(try cursor.read(UInt64.self, what()))
        case .int64: return .int64(try cursor.read(Int64.self, what()))
        case .float32: return .float32(Float(bitPattern: try cursor.read(UInt32.self, what())))
        case .float64: return .float64(Double(bitPattern: try cursor.read(UInt64.self, what())))
        case .bool:
            let b = try cursor.read(UInt8.self, what())
            guard b <= 1 else {
                throw MoEError(.invalidFile, "metadata key '\(key)' is a BOOL stored as \(b), expected 0 or 1")
            }
            return .bool(b == 1)
        case .string:
            return .string(try cursor.readString(what()))
        case .array:
            guard depth < GGUFFile.maximumArrayDepth else {
                throw MoEError(.invalidFile, "metadata key '\(key)' nests arrays more than \(GGUFFile.maximumArrayDepth) deep")
            }
            let rawElement = try cursor.read(UInt32.self, "the element type of array '\(key)'")
            guard let element = GGUFValueType(rawValue: rawElement) else {
                throw MoEError(.invalidFile, "array '\(key)' has element type \(rawElement), expected 0...12")
            }
            let count = try cursor.readCount("the element count of array '\(key)'", minimumItemSize: element.minimumSize)
            let start = cursor.offset
            if let size = element.fixedSize {
                cursor.offset += count * size  // readCount guaranteed count * size fits what remains
                if element == .bool {
                    for i in start..<cursor.offset where file.bytes[i] > 1 {
                        throw MoEError(.invalidFile, "array '\(key)' holds a BOOL stored as \(file.bytes[i]), expected 0 or 1")
                    }
                }
            } else if element == .string {
                for i in 0..<count { _ = try cursor.readStringRange("element \(i) of array '\(key)'") }
            } else {
                for i in 0..<count {
                    _ = try readValue(of: .array, from: &cursor, file: file, key: "\(key)[\(i)]", depth: depth + 1)
                }
            }
            return .array(GGUFArray(mapped: file, elementType: element, count: count, bytes: start..<cursor.offset))
        }
    }
}
