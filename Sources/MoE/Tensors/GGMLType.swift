/// A ggml tensor element type (`F32`, `Q4_K`, ...), identified by the number GGUF stores.
///
/// The traits of every type live in one table (`GGMLType.traits`): name, elements per block,
/// bytes per block, and whether swift-moe can dequantize it.
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    /// The number stored in a GGUF tensor info.
    public let rawValue: UInt32

    /// The type with this number, or nil when the number names no type ggml knows
    /// (including the retired numbers 4, 5 and 31-33, 36-38).
    public init?(rawValue: UInt32) {
        guard rawValue < GGMLType.traitsByRawValue.count, GGMLType.traitsByRawValue[Int(rawValue)] != nil else { return nil }
        self.rawValue = rawValue
    }

    private init(_ raw: UInt32) { rawValue = raw }

    public static let f32 = GGMLType(0)
    public static let f16 = GGMLType(1)
    public static let q4_0 = GGMLType(2)
    public static let q4_1 = GGMLType(3)
    public static let q5_0 = GGMLType(6)
    public static let q5_1 = GGMLType(7)
    public static let q8_0 = GGMLType(8)
    public static let q8_1 = GGMLType(9)
    public static let q2_K = GGMLType(10)
    public static let q3_K = GGMLType(11)
    public static let q4_K = GGMLType(12)
    public static let q5_K = GGMLType(13)
    public static let q6_K = GGMLType(14)
    public static let q8_K = GGMLType(15)
    public static let iq2_XXS = GGMLType(16)
    public static let iq2_XS = GGMLType(17)
    public static let iq3_XXS = GGMLType(18)
    public static let iq1_S = GGMLType(19)
    public static let iq4_NL = GGMLType(20)
    public static let iq3_S = GGMLType(21)
    public static let iq2_S = GGMLType(22)
    public static let iq4_XS = GGMLType(23)
    public static let i8 = GGMLType(24)
    public static let i16 = GGMLType(25)
    public static let i32 = GGMLType(26)
    public static let i64 = GGMLType(27)
    public static let f64 = GGMLType(28)
    public static let iq1_M = GGMLType(29)
    public static let bf16 = GGMLType(30)
    public static let tq1_0 = GGMLType(34)
    public static let tq2_0 = GGMLType(35)
    public static let mxfp4 = GGMLType(39)
    public static let nvfp4 = GGMLType(40)
    public static let q1_0 = GGMLType(41)

    /// What ggml knows about one type.
    public struct Traits: Sendable {
        /// The name ggml prints (`Q4_K`).
        public let name: String
        /// Elements per block (1 for plain types, 32 or 256 for quantized ones).
        public let blockSize: Int
        /// Bytes per block.
        public let blockBytes: Int
        /// Whether `dequantize` supports the type.
        public let dequantizable: Bool
    }

    /// One row per type; facts from ggml's type table (`ggml.c`), checked against the `gguf`
    /// package's `GGML_QUANT_SIZES` by the test suite's fixtures.
    public static let traits: [(GGMLType, Traits)] = [
        (.f32, Traits(name: "F32", blockSize: 1, blockBytes: 4, dequantizable: true)),
        (.f16, Traits(name: "F16", blockSize: 1, blockBytes: 2, dequantizable: true)),
        (.q4_0, Traits(name: "Q4_0", blockSize: 32, blockBytes: 18, dequantizable: true)),
        (.q4_1, Traits(name: "Q4_1", blockSize: 32, blockBytes: 20, dequantizable: true)),
        (.q5_0, Traits(name: "Q5_0", blockSize: 32, blockBytes: 22, dequantizable: true)),
        (.q5_1, Traits(name: "Q5_1", blockSize: 32, blockBytes: 24, dequantizable: true)),
        (.q8_0, Traits(name: "Q8_0", blockSize: 32, blockBytes: 34, dequantizable: true)),
        (.q8_1, Traits(name: "Q8_1", blockSize: 32, blockBytes: 36, dequantizable: false)),
        (.q2_K, Traits(name: "Q2_K", blockSize: 256, blockBytes: 84, dequantizable: true)),
        (.q3_K, Traits(name: "Q3_K", blockSize: 256, blockBytes: 110, dequantizable: true)),
        (.q4_K, Traits(name: "Q4_K", blockSize: 256, blockBytes: 144, dequantizable: true)),
        (.q5_K, Traits(name: "Q5_K", blockSize: 256, blockBytes: 176, dequantizable: true)),
        (.q6_K, Traits(name: "Q6_K", blockSize: 256, blockBytes: 210, dequantizable: true)),
        (.q8_K, Traits(name: "Q8_K", blockSize: 256, blockBytes: 292, dequantizable: true)),
        (.iq2_XXS, Traits(name: "IQ2_XXS", blockSize: 256, blockBytes: 66, dequantizable: false)),
        (.iq2_XS, Traits(name: "IQ2_XS", blockSize: 256, blockBytes: 74, dequantizable: false)),
        (.iq3_XXS, Traits(name: "IQ3_XXS", blockSize: 256, blockBytes: 98, dequantizable: false)),
        (.iq1_S, Traits(name: "IQ1_S", blockSize: 256, blockBytes: 50, dequantizable: false)),
        (.iq4_NL, Traits(name: "IQ4_NL", blockSize: 32, blockBytes: 18, dequantizable: true)),
        (.iq3_S, Traits(name: "IQ3_S", blockSize: 256, blockBytes: 110, dequantizable: false)),
        (.iq2_S, Traits(name: "IQ2_S", blockSize: 256, blockBytes: 82, dequantizable: false)),
        (.iq4_XS, Traits(name: "IQ4_XS", blockSize: 256, blockBytes: 136, dequantizable: true)),
        (.i8, Traits(name: "I8", blockSize: 1, blockBytes: 1, dequantizable: true)),
        (.i16, Traits(name: "I16", blockSize: 1, blockBytes: 2, dequantizable: true)),
        (.i32, Traits(name: "I32", blockSize: 1, blockBytes: 4, dequantizable: true)),
        (.i64, Traits(name: "I64", blockSize: 1, blockBytes: 8, dequantizable: true)),
        (.f64, Traits(name: "F64", blockSize: 1, blockBytes: 8, dequantizable: true)),
        (.iq1_M, Traits(name: "IQ1_M", blockSize: 256, blockBytes: 56, dequantizable: false)),
        (.bf16, Traits(name: "BF16", blockSize: 1, blockBytes: 2, dequantizable: true)),
        (.tq1_0, Traits(name: "TQ1_0", blockSize: 256, blockBytes: 54, dequantizable: false)),
        (.tq2_0, Traits(name: "TQ2_0", blockSize: 256, blockBytes: 66, dequantizable: false)),
        (.mxfp4, Traits(name: "MXFP4", blockSize: 32, blockBytes: 17, dequantizable: true)),
        (.nvfp4, Traits(name: "NVFP4", blockSize: 64, blockBytes: 36, dequantizable: false)),
        (.q1_0, Traits(name: "Q1_0", blockSize: 128, blockBytes: 18, dequantizable: false)),
    ]

    /// The traits indexed by raw value (nil for numbers no type has): an array, not a dictionary,
    /// because kernels look types up per matrix on the hot path.
    private static let traitsByRawValue: [Traits?] = {
        var table = [Traits?](repeating: nil, count: Int(traits.map(\.0.rawValue).max()!) + 1)
        for (type, t) in traits { table[Int(type.rawValue)] = t }
        return table
    }()

    /// Every known type, in table order.
    public static var allKnown: [GGMLType] { traits.map(\.0) }

    /// This type's row of the traits table.
    public var traits: Traits { GGMLType.traitsByRawValue[Int(rawValue)]! }
    /// The name ggml prints (`Q4_K`).
    public var name: String { traits.name }
    /// Elements per block.
    public var blockSize: Int { traits.blockSize }
    /// Bytes per block.
    public var blockBytes: Int { traits.blockBytes }
    /// Whether elements are stored in quantized blocks (block size above 1).
    public var isQuantized: Bool { traits.blockSize > 1 }
    /// The type with this ggml name (case-insensitive), or nil.
    public init?(name: String) {
        let upper = name.uppercased()
        guard let match = GGMLType.traits.first(where: { $0.1.name == upper }) else { return nil }
        self = match.0
    }

    /// Bytes that `elements` elements take, or nil when `elements` is not a whole number of
    /// blocks or the size overflows.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }

    /// The ggml name.
    public var description: String { name }
}
