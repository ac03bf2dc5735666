/// Reads little-endian values from a byte range, checking every read against the range's end.
/// Every failure names what was being read, so a truncated file says which key or tensor broke.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    /// Throws unless `count` more bytes are available.
    func require(_ count: Int, _ what: @autoclosure () -> String) throws(MoEError) {
        guard count >= 0, count <= remaining else {
            throw MoEError(
                .invalidFile,
                "truncated: \(what()) needs \(count) bytes at offset \(offset), but only \(max(remaining, 0)) remain in the file")
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(MoEError) -> T {
        try require(MemoryLayout<T>.size, what())
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    /// Reads a GGUF length (uint64) and checks it fits an `Int` and the bytes that remain,
    /// given that each counted item takes at least `minimumItemSize` bytes.
    mutating func readCount(_ what: @autoclosure () -> String, minimumItemSize: Int) throws(MoEError) -> Int {
        let raw = try read(UInt64.self, what())
        let limit = remaining / max(minimumItemSize, 1)
        guard raw <= UInt64(limit) else {
            throw MoEError(
                .invalidFile,
                "\(what()) is \(raw), but the \(remaining) bytes left in the file hold at most \(limit)")
        }
        return Int(raw)
    }

    /// Reads a GGUF string (uint64 length + bytes) and returns where its bytes are.
    mutating func readStringRange(_ what: @autoclosure () -> String) throws(MoEError) -> Range<Int> {
        let length = try readCount("the length of \(what())", minimumItemSize: 1)
        let start = offset
        offset += length
        return start..<(start + length)
    }

    mutating func readString(_ what: @autoclosure () -> String) throws(MoEError) -> String {
        let range = try readStringRange(what())
        return string(at: range)
    }

    func string(at range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}
