/// Turns text into token ids and back, exactly as llama.cpp does for the same GGUF vocabulary.
///
/// Encoding first cuts the text at special tokens (control tokens only when `parseSpecial`),
/// then runs the vocabulary's algorithm on each stretch of plain text: byte-level BPE (split by
/// the pre-tokenizer rule, bytes mapped to GPT-2's printable characters, merges by rank) or
/// SentencePiece BPE (spaces to U+2581, merges by score, unknown characters as byte tokens).
public final class Tokenizer: Sendable {
    /// The vocabulary.
    public let vocabulary: Vocabulary
    private let preTokenizer: PreTokenizer?
    /// The text of each token as raw bytes (what it prints as); control tokens map to their text.
    private let pieces: [[UInt8]]

    /// A tokenizer for `vocabulary`.
    public init(_ vocabulary: Vocabulary) throws(MoEError) {
        self.vocabulary = vocabulary
        preTokenizer = try vocabulary.preTokenizerRule.map { rule throws(MoEError) in try PreTokenizer(rule) }
        pieces = vocabulary.tokens.indices.map { Tokenizer.piece(of: $0, in: vocabulary) }
    }

    /// A tokenizer for the vocabulary stored in `file`.
    public convenience init(file: GGUFFile) throws(MoEError) {
        try self.init(Vocabulary(file: file))
    }

    // MARK: Encoding

    /// The token ids for `text`. `addSpecial` adds BOS/EOS as the vocabulary asks;
    /// `parseSpecial` turns the text of control tokens (`<|im_start|>`) into those tokens.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        var out: [Int32] = []
        let v = vocabulary
        if addSpecial && v.addBOS, let bos = v.bos { out.append(bos) }
        var previousWasSpecial = true
        for fragment in partition(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                out.append(id)
                previousWasSpecial = true
            case .text(let s):
                switch v.kind {
                case .bytePairEncoding:
                    encodeBPE(s, into: &out)
                case .sentencePiece:
                    var t = (v.addSpacePrefix && previousWasSpecial) ? " " : ""
                    t += s
                    encodeSentencePiece(t, into: &out)
                }
                previousWasSpecial = false
            }
        }
        if addSpecial && v.addEOS, let eos = v.eos { out.append(eos) }
        return out
    }

    private enum Fragment {
        case text(Substring)
        case token(Int32)
    }

    /// Cuts `text` at occurrences of special tokens, longest token first (llama.cpp's order).
    private func partition(_ text: String, parseSpecial: Bool) -> [Fragment] {
        guard !text.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(Substring(text))]
        let v = vocabulary
        for id in v.specialTokens {
            let attr = v.attributes[Int(id)]
            if !parseSpecial && !attr.isDisjoint(with: [.control, .unknown]) { continue }
            let needle = Array(v.tokens[Int(id)].utf8)
            guard !needle.isEmpty else { continue }
            var next: [Fragment] = []
            var changed = false
            for f in fragments {
                guard case .text(let s) = f else { next.append(f); continue }
                var rest = s
                while let r = Tokenizer.find(needle, in: rest) {
                    changed = true
                    let left = rest[..<r.lowerBound]
                    if !left.isEmpty { next.append(.text(left)) }
                    next.append(.token(id))
                    var right = rest[r.upperBound...]
                    if attr.contains(.rstrip) {
                        right = right.drop(while: { $0.isASCII && $0.isWhitespace })
                    }
                    rest = right
                }
                if !rest.isEmpty { next.append(.text(rest)) }
            }
            if changed { fragments = next }
        }
        return fragments
    }

    /// The first occurrence of `needle` (UTF-8 bytes) in `haystack`, as a range of `haystack`.
    private static func find(_ needle: [UInt8], in haystack: Substring) -> Range<Substring.Index>? {
        let utf8 = haystack.utf8
        guard let first = needle.first, utf8.count >= needle.count else { return nil }
        var i = utf8.startIndex
        while let start = utf8[i...].firstIndex(of: first) {
            var a = start, k = 0
            while k < needle.count, a < utf8.endIndex, utf8[a] == needle[k] {
                a = utf8.index(after: a)
                k += 1
            }
            if k == needle.count { return start..<a }
            i = utf8.index(after: start)
        }
        return nil
    }

    private func encodeBPE(_ text: Substring, into out: inout [Int32]) {
        guard let preTokenizer else { return }
        let v = vocabulary
        // Words repeat (Zipf): merge each distinct word once per call. Keys are the word's bytes,
        // never Strings (canonically equivalent words can tokenize differently).
        var cache: [[UInt8]: [Int32]] = [:]
        for word in preTokenizer.split(text) {
            var mapped: [UInt8] = []
            mapped.reserveCapacity(word.utf8.count * 2)
            for b in word.utf8 { mapped.append(contentsOf: ByteLevel.encode[Int(b)]) }
            if preTokenizer.rule.ignoreMerges, let id = v.ids[mapped] {
                out.append(id)
                continue
            }
            if let known = cache[mapped] {
                out.append(contentsOf: known)
                continue
            }
            var ids: [Int32] = []
            for symbol in BytePairMerger.merge(mapped, rank: { v.mergeRanks[$0] }) {
                if let id = v.ids[symbol] {
                    ids.append(id)
                } else {
                    // A symbol that is not a token: llama.cpp looks up each of its bytes alone,
                    // which only an ASCII byte can match; the rest are dropped, as there.
                    for b in symbol where b < 0x80 {
                        if let id = v.ids[[b]] { ids.append(id) }
                    }
                }
            }
            if cache.count < 65536 { cache[mapped] = ids }
            out.append(contentsOf: ids)
        }
    }

    private func encodeSentencePiece(_ text: String, into out: inout [Int32]) {
        let v = vocabulary
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.utf8.count + 8)
        for b in text.utf8 {
            if b == 0x20 { escaped.append(contentsOf: [0xE2, 0x96, 0x81]) } else { escaped.append(b) }
        }
        for symbol in SentencePieceMerger.merge(escaped, score: { s in
            guard let id = v.ids[s] else { return nil }
            return v.scores.isEmpty ? 0 : v.scores[Int(id)]
        }) {
            if let id = v.ids[symbol] {
                out.append(id)
            } else {
                for b in symbol {
                    let hex = Array(("<0x" + String(b >> 4, radix: 16, uppercase: true) + String(b & 15, radix: 16, uppercase: true) + ">").utf8)
                    if let id = v.ids[hex] ?? v.ids[[b]] {
                        out.append(id)
                    } else if let unk = v.unk {
                        out.append(unk)
                    }
                }
            }
        }
    }

    // MARK: Decoding

    /// The bytes a token prints as. Control and unknown tokens print nothing unless `special`.
    public func piece(_ id: Int32, special: Bool = false) -> [UInt8] {
        guard vocabulary.contains(id) else { return [] }
        if !special && !vocabulary.attributes[Int(id)].isDisjoint(with: [.control, .unknown]) { return [] }
        return pieces[Int(id)]
    }

    /// The text of a token sequence (invalid UTF-8 becomes U+FFFD). With `special`, control
    /// tokens print their text.
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes.append(contentsOf: piece(id, special: special)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func piece(of id: Int, in v: Vocabulary) -> [UInt8] {
        let text = v.tokens[id]
        let attr = v.attributes[id]
        if !attr.isDisjoint(with: [.control, .unknown, .userDefined]) { return Array(text.utf8) }
        if attr.contains(.byte) || (v.kind == .sentencePiece && attr.isEmpty), let b = byteValue(text) { return [b] }
        switch v.kind {
        case .sentencePiece:
            return Array(text.replacing("\u{2581}", with: " ").utf8)
        case .bytePairEncoding:
            var out: [UInt8] = []
            for s in text.unicodeScalars {
                if let b = ByteLevel.decode[s] {
                    out.append(b)
                } else {
                    out.append(contentsOf: Array(String(s).utf8))
                }
            }
            return out
        }
    }

    /// The byte of a `<0xAB>` token text.
    private static func byteValue(_ text: String) -> UInt8? {
        let u = Array(text.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }
}

/// Turns a stream of token ids into a stream of complete UTF-8 text: bytes of a character
/// split across tokens are held back until the character is complete.
public struct TextStreamer: Sendable {
    private let tokenizer: Tokenizer
    private var pending: [UInt8] = []
    /// Whether control tokens print their text.
    public var special: Bool

    /// A streamer over `tokenizer`.
    public init(_ tokenizer: Tokenizer, special: Bool = false) {
        self.tokenizer = tokenizer
        self.special = special
    }

    /// The text that became complete with `id` (possibly empty).
    public mutating func push(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.piece(id, special: special))
        let complete = TextStreamer.completePrefix(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is still held back (an incomplete character becomes U+FFFD).
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest prefix that does not end inside a UTF-8 sequence that could
    /// still be completed. Invalid bytes are released at once (they decode to U+FFFD).
    static func completePrefix(_ b: [UInt8]) -> Int {
        let n = b.count
        // Look at the last up-to-3 bytes for the start of an unfinished sequence.
        var i = n - 1
        var back = 0
        while i >= 0 && back < 4 {
            let c = b[i]
            if c & 0xC0 != 0x80 {
                let need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1
                return n - i < need ? i : n
            }
            i -= 1
            back += 1
        }
        return n
    }
}

/// Splits UTF-8 bytes into one symbol per character (a truncated sequence is one symbol).
private func characterSymbols(_ bytes: [UInt8]) -> [[UInt8]] {
    var symbols: [[UInt8]] = []
    var i = 0
    while i < bytes.count {
        let lead = bytes[i]
        let len = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 1
        let end = min(i + len, bytes.count)
        symbols.append(Array(bytes[i..<end]))
        i = end
    }
    return symbols
}

/// Merges adjacent symbols of one word, best candidate first, with a heap over a linked list
/// (llama.cpp's procedure). `priority` gives a candidate's rank (lower first) or nil when the
/// pair may not merge; ties go to the leftmost pair.
private func mergeSymbols(_ bytes: [UInt8], priority: ([UInt8], [UInt8]) -> Double?) -> [[UInt8]] {
    var symbols = characterSymbols(bytes)
    guard symbols.count > 1 else { return symbols }
    var prev = Array(-1..<(symbols.count - 1))
    var next = Array(1...symbols.count)
    next[symbols.count - 1] = -1
    var alive = [Bool](repeating: true, count: symbols.count)
    var heap = MergeHeap()
    func push(_ l: Int, _ r: Int) {
        guard l >= 0, r >= 0, let p = priority(symbols[l], symbols[r]) else { return }
        heap.push(.init(priority: p, left: l, right: r, size: symbols[l].count + symbols[r].count))
    }
    for j in 1..<symbols.count { push(j - 1, j) }
    while let top = heap.pop() {
        let l = top.left, r = top.right
        // Stale when either side has merged since (its size changed) or was absorbed.
        guard alive[l], alive[r], next[l] == r, symbols[l].count + symbols[r].count == top.size else { continue }
        symbols[l] += symbols[r]
        symbols[r] = []
        alive[r] = false
        next[l] = next[r]
        if next[r] >= 0 { prev[next[r]] = l }
        push(prev[l], l)
        push(l, next[l])
    }
    return symbols.indices.filter { alive[$0] }.map { symbols[$0] }
}

/// Byte-level BPE on one word: repeatedly merges the adjacent pair with the lowest merge rank.
enum BytePairMerger {
    static func merge(_ word: [UInt8], rank: ([UInt8]) -> Int32?) -> [[UInt8]] {
        mergeSymbols(word) { l, r in rank(l + [0x20] + r).map(Double.init) }
    }
}

/// SentencePiece BPE on a piece of text: repeatedly merges the adjacent pair whose concatenation
/// is the token with the highest score.
enum SentencePieceMerger {
    static func merge(_ text: [UInt8], score: ([UInt8]) -> Float?) -> [[UInt8]] {
        // The heap pops the smallest priority: negate so the highest score comes first.
        mergeSymbols(text) { l, r in score(l + r).map { -Double($0) } }
    }
}

/// A binary min-heap of candidate merges ordered by (priority, left position).
struct MergeHeap {
    struct Entry {
        var priority: Double
        var left: Int
        var right: Int
        var size: Int
        func before(_ o: Entry) -> Bool { priority != o.priority ? priority < o.priority : left < o.left }
    }
    private var items: [Entry] = []

    mutating func push(_ e: Entry) {
        items.append(e)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard items[c].before(items[p]) else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < items.count && items[l].before(items[m]) { m = l }
                if r < items.count && items[r].before(items[m]) { m = r }
                if m == p { break }
                items.swapAt(p, m)
                p = m
            }
        }
        return top
    }
}
