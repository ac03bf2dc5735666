/// The type tag of a GGUF metadata value, as stored in the file.
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes one value of this type takes, or nil for strings and arrays (variable length).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value of this type can take in a file (used to bound counts).
    var minimumSize: Int {
        switch self {
        case .string: 8
        case .array: 12
        default: fixedSize!
        }
    }

    /// The name GGUF documentation uses (`UINT32`, `STRING`, ...).
    public var description: String {
        switch self {
        case .uint8: "UINT8"
        case .int8: "INT8"
        case .uint16: "UINT16"
        case .int16: "INT16"
        case .uint32: "UINT32"
        case .int32: "INT32"
        case .float32: "FLOAT32"
        case .bool: "BOOL"
        case .string: "STRING"
        case .array: "ARRAY"
        case .uint64: "UINT64"
        case .int64: "INT64"
        case .float64: "FLOAT64"
        }
    }
}

/// One GGUF metadata value.
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The type tag this value is stored with.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The value as an `Int`, for any integer type whose value fits; nil otherwise.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// The value as a `Double`, for float types and integers; nil otherwise.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    /// A short human-readable rendering (arrays show their type, count and first items).
    public var description: String {
        switch self {
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): v
        case .array(let a): a.description
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float64(let v): "\(v)"
        }
    }
}

/// A GGUF array value. Arrays read from a file stay in the mapping and are decoded on access,
/// so opening a file with a 150k-entry vocabulary costs one validating pass, not 150k strings.
public struct GGUFArray: Sendable, Equatable, CustomStringConvertible {
    /// The type of every element.
    public let elementType: GGUFValueType
    /// The number of elements.
    public let count: Int
    private let storage: Storage

    private enum Storage: @unchecked Sendable {
        case owned([GGUFValue])
        /// Validated element bytes inside a mapped file (the file is kept alive).
        case mapped(MappedFile, Range<Int>)
    }

    /// An array built in memory (for writing). Every element must have type `elementType`.
    public init(_ elementType: GGUFValueType, _ elements: [GGUFValue]) throws(MoEError) {
        for (i, e) in elements.enumerated() where e.type != elementType {
            throw MoEError(.typeMismatch, "array element \(i) is \(e.type), but the array holds \(elementType)")
        }
        self.elementType = elementType
        self.count = elements.count
        self.storage = .owned(elements)
    }

    /// An array of strings.
    public init(strings: [String]) {
        self.elementType = .string
        self.count = strings.count
        self.storage = .owned(strings.map { .string($0) })
    }

    init(mapped file: MappedFile, elementType: GGUFValueType, count: Int, bytes: Range<Int>) {
        self.elementType = elementType
        self.count = count
        self.storage = .mapped(file, bytes)
    }

    /// Every element, decoded.
    public var elements: [GGUFValue] {
        switch storage {
        case .owned(let values):
            return values
        case .mapped(let file, let range):
            var cursor = ByteCursor(file.bytes, offset: range.lowerBound)
            var out: [GGUFValue] = []
            out.reserveCapacity(count)
            for _ in 0..<count {
                // The range was validated when the file was opened; a failure here is impossible
                // unless the file changed underneath, and then we stop rather than read garbage.
                guard let value = try? GGUFParser.readValue(of: elementType, from: &cursor, file: file, key: "", depth: 1)
                else { break }
                out.append(value)
            }
            return out
        }
    }

    /// The elements as strings, or nil when this is not an array of strings.
    public var strings: [String]? {
        guard elementType == .string else { return nil }
        if case .mapped(let file, let range) = storage {
            var cursor = ByteCursor(file.bytes, offset: range.lowerBound)
            var out: [String] = []
            out.reserveCapacity(count)
            for _ in 0..<count {
                guard let s = try? cursor.readString("string") else { break }
                out.append(s)
            }
            return out
        }
        return elements.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    /// The elements as `Int`s, or nil when this is not an array of integers that fit.
    public var integers: [Int]? {
        var out: [Int] = []
        out.reserveCapacity(count)
        for e in elements {
            guard let v = e.intValue else { return nil }
            out.append(v)
        }
        return out
    }

    /// The elements as `Double`s, or nil when this is not an array of numbers.
    public var doubles: [Double]? {
        var out: [Double] = []
        out.reserveCapacity(count)
        for e in elements {
            guard let v = e.doubleValue, e.type != .bool else { return nil }
            out.append(v)
        }
        return out
    }

    /// Arrays are equal when their element types and decoded elements are equal.
    public static func == (a: GGUFArray, b: GGUFArray) -> Bool {
        a.elementType == b.elementType && a.count == b.count && a.elements == b.elements
    }

    /// `[STRING x 151936: "!", "\"", ...]`.
    public var description: String {
        let head = (count <= 4 ? elements : Array(elements.prefix(3))).map { v -> String in
            if case .string(let s) = v { return "\"\(s)\"" }
            return v.description
        }
        return "[\(elementType) x \(count): \(head.joined(separator: ", "))\(count > head.count ? ", ..." : "")]"
    }
}
