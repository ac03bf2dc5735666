/// The key-value metadata of a GGUF file, in file order, with typed access.
///
/// Keys may use the placeholder `{arch}` for the file's `general.architecture`, so that
/// `metadata.int("{arch}.expert_count")` reads `qwen3moe.expert_count` in a Qwen3-MoE file.
public struct GGUFMetadata: Sendable, Equatable {
    /// Every entry in file order.
    public private(set) var entries: [(key: String, value: GGUFValue)]
    private var index: [String: Int]

    /// An empty metadata set.
    public init() {
        entries = []
        index = [:]
    }

    /// The number of entries.
    public var count: Int { entries.count }

    /// The `general.architecture` string, or nil when the file has none.
    public var architecture: String? {
        if case .string(let s)? = self["general.architecture"] { return s }
        return nil
    }

    /// Expands `{arch}` to the architecture name.
    public func resolve(_ key: String) -> String {
        guard key.contains("{arch}") else { return key }
        return key.replacing("{arch}", with: architecture ?? "")
    }

    /// The value stored under `key` (with `{arch}` expanded), or nil.
    public subscript(_ key: String) -> GGUFValue? {
        index[resolve(key)].map { entries[$0].value }
    }

    /// Whether `key` (with `{arch}` expanded) is present.
    public func contains(_ key: String) -> Bool { index[resolve(key)] != nil }

    /// Adds or replaces an entry; a replaced entry keeps its position.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = index[key] {
            entries[i].value = value
        } else {
            index[key] = entries.count
            entries.append((key, value))
        }
    }

    /// Adds an entry read from a file; a duplicate key is an error.
    mutating func append(_ key: String, _ value: GGUFValue) throws(MoEError) {
        guard index[key] == nil else {
            throw MoEError(.invalidFile, "metadata key '\(key)' appears twice")
        }
        index[key] = entries.count
        entries.append((key, value))
    }

    private func required(_ key: String) throws(MoEError) -> GGUFValue {
        guard let value = self[key] else {
            throw MoEError(.notFound, "metadata key '\(resolve(key))' is missing")
        }
        return value
    }

    private func mismatch(_ key: String, _ value: GGUFValue, _ expected: String) -> MoEError {
        MoEError(.typeMismatch, "metadata key '\(resolve(key))' is \(value.type) \(value), expected \(expected)")
    }

    /// An integer value of any integer type, range-checked into `Int`.
    public func int(_ key: String) throws(MoEError) -> Int {
        let value = try required(key)
        guard let v = value.intValue else { throw mismatch(key, value, "an integer") }
        return v
    }

    /// An integer value, or `defaultValue` when the key is absent (a present value of the
    /// wrong type is still an error).
    public func int(_ key: String, default defaultValue: Int) throws(MoEError) -> Int {
        contains(key) ? try int(key) : defaultValue
    }

    /// A `UINT32` value exactly (other integer types that fit are accepted too).
    public func uint32(_ key: String) throws(MoEError) -> UInt32 {
        let value = try required(key)
        guard let v = value.intValue, let u = UInt32(exactly: v) else { throw mismatch(key, value, "a UINT32") }
        return u
    }

    /// A floating-point value (integers are converted).
    public func double(_ key: String) throws(MoEError) -> Double {
        let value = try required(key)
        guard let v = value.doubleValue else { throw mismatch(key, value, "a number") }
        return v
    }

    /// A floating-point value, or `defaultValue` when the key is absent.
    public func double(_ key: String, default defaultValue: Double) throws(MoEError) -> Double {
        contains(key) ? try double(key) : defaultValue
    }

    /// A string value.
    public func string(_ key: String) throws(MoEError) -> String {
        let value = try required(key)
        guard case .string(let s) = value else { throw mismatch(key, value, "a STRING") }
        return s
    }

    /// A string value, or nil when the key is absent.
    public func optionalString(_ key: String) throws(MoEError) -> String? {
        contains(key) ? try string(key) : nil
    }

    /// A boolean value.
    public func bool(_ key: String) throws(MoEError) -> Bool {
        let value = try required(key)
        guard case .bool(let b) = value else { throw mismatch(key, value, "a BOOL") }
        return b
    }

    /// An array value.
    public func array(_ key: String) throws(MoEError) -> GGUFArray {
        let value = try required(key)
        guard case .array(let a) = value else { throw mismatch(key, value, "an ARRAY") }
        return a
    }

    /// Entries are equal when keys, order and values are equal.
    public static func == (a: GGUFMetadata, b: GGUFMetadata) -> Bool {
        a.entries.count == b.entries.count
            && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
