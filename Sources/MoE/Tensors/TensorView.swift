/// A read-only, zero-copy view of a tensor's bytes inside a mapped file. Views are cheap to make
/// and to copy; they keep the mapping alive. Nothing is read until the bytes are used.
public struct TensorView: Sendable {
    /// The tensor's name in the file.
    public let name: String
    /// The element type.
    public let type: GGMLType
    /// Dimensions, innermost first (`shape[0]` is the row length).
    public let shape: [Int]
    /// Offset of the first byte in the file.
    public let fileOffset: Int
    /// Number of bytes.
    public let byteCount: Int
    /// The mapping the bytes live in.
    public let file: MappedFile

    /// Creates a view; the caller guarantees the range lies inside `file` (the parser checks it).
    init(file: MappedFile, name: String, type: GGMLType, shape: [Int], fileOffset: Int, byteCount: Int) {
        self.file = file
        self.name = name
        self.type = type
        self.shape = shape
        self.fileOffset = fileOffset
        self.byteCount = byteCount
    }

    /// Elements per row.
    public var rowLength: Int { shape.first ?? 1 }
    /// Rows (the product of every dimension but the first).
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
    /// Bytes per row.
    public var rowBytes: Int { rowLength / type.blockSize * type.blockBytes }
    /// Total elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// The raw bytes, valid while the view (or its file) is alive.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[fileOffset..<(fileOffset + byteCount)])
    }

    /// The raw bytes of row `index`.
    public func row(_ index: Int) throws(MoEError) -> UnsafeRawBufferPointer {
        guard index >= 0 && index < rowCount else {
            throw MoEError(.invalidArgument, "row \(index) of tensor '\(name)' is out of range 0..<\(rowCount)")
        }
        let start = fileOffset + index * rowBytes
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + rowBytes)])
    }

    /// The sub-tensor at `index` along the outermost dimension: for a stacked expert tensor of
    /// shape [n_in, n_out, n_expert], `slice(e)` is expert `e`'s [n_in, n_out] matrix.
    public func slice(_ index: Int) throws(MoEError) -> TensorView {
        guard shape.count >= 2, let outer = shape.last, index >= 0, index < outer else {
            throw MoEError(.invalidArgument, "slice \(index) of tensor '\(name)' with shape \(shape) is out of range")
        }
        let size = byteCount / outer
        return TensorView(file: file, name: "\(name)[\(index)]", type: type, shape: Array(shape.dropLast()),
                          fileOffset: fileOffset + index * size, byteCount: size)
    }

    /// Dequantizes row `index` into `destination` (at least `rowLength` floats).
    public func dequantizeRow(_ index: Int, into destination: UnsafeMutableBufferPointer<Float>) throws(MoEError) {
        try type.dequantize(try row(index), count: rowLength, into: destination)
    }

    /// Row `index` as `Float`s, in a new array.
    public func dequantizedRow(_ index: Int) throws(MoEError) -> [Float] {
        var out = [Float](repeating: 0, count: rowLength)
        let source = try row(index)
        let count = rowLength
        try out.withUnsafeMutableBufferPointer { (dst: inout UnsafeMutableBufferPointer<Float>) throws(MoEError) in
            try type.dequantize(source, count: count, into: dst)
        }
        return out
    }

    /// Every element as `Float`, in a new array. Meant for small tensors, tests and tools:
    /// the forward pass never dequantizes whole matrices.
    public func dequantized() throws(MoEError) -> [Float] {
        var out = [Float](repeating: 0, count: elementCount)
        let source = bytes
        let count = elementCount
        try out.withUnsafeMutableBufferPointer { (dst: inout UnsafeMutableBufferPointer<Float>) throws(MoEError) in
            try type.dequantize(source, count: count, into: dst)
        }
        return out
    }
}
