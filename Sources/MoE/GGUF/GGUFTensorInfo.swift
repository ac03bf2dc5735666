/// Where one tensor lives in a GGUF file and what it holds. Validated at open: the type is
/// known, the row length is a whole number of blocks, and the byte range lies inside the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name (`blk.0.ffn_gate_exps.weight`).
    public let name: String
    /// Dimensions, innermost first as ggml orders them: `shape[0]` is the row length.
    public let shape: [Int]
    /// The element type.
    public let type: GGMLType
    /// Offset of the data from the start of the file's data section.
    public let offset: Int
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    /// Bytes of data.
    public let byteCount: Int

    /// Total number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
    /// Elements per row (`shape[0]`).
    public var rowLength: Int { shape.first ?? 1 }
    /// Number of rows (the product of every dimension but the first).
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
    /// Bytes per row.
    public var rowBytes: Int { rowLength / type.blockSize * type.blockBytes }
}
