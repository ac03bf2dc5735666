/// How a model is opened: the expert store's budget and policy, and file read-ahead.
public struct ModelOptions: Sendable {
    /// When set, routed experts are served from a RAM budget of slots instead of the mapping.
    public var expertStore: ExpertStoreOptions?
    /// Ask the OS to read the file ahead at load (madvise WILLNEED). With an expert store, only
    /// the tensors that stay mapped (attention, norms, router, embeddings) are read ahead.
    public var prefetchFile: Bool

    /// Options: no expert store, no read-ahead unless given.
    public init(expertStore: ExpertStoreOptions? = nil, prefetchFile: Bool = false) {
        self.expertStore = expertStore
        self.prefetchFile = prefetchFile
    }
}

/// Which resident expert a full store evicts to make room.
public enum ExpertEvictionPolicy: String, Sendable, CaseIterable {
    /// The least recently used expert (the default).
    case lru
    /// The least frequently used expert; each layer's counts halve every `2 * experts` uses.
    case lfu
}

/// The expert store's settings: a budget in bytes, an eviction policy, prefetching and I/O.
public struct ExpertStoreOptions: Sendable {
    /// Bytes of RAM for expert slots; the store holds `budget / slotBytes` experts.
    public var budget: Int
    /// What to evict when every slot is taken.
    public var policy: ExpertEvictionPolicy
    /// Predict each layer's experts from the hidden state before its attention runs (the layer's
    /// own router applied early) and start reading them while attention computes.
    public var prefetch: Bool
    /// Threads that read missing experts from the file.
    public var ioThreads: Int
    /// Read with O_DIRECT (Linux) or F_NOCACHE (Darwin) so paging bypasses the page cache;
    /// when the file system refuses, reads fall back to `pread` + POSIX_FADV_DONTNEED.
    public var directIO: Bool
    /// Per layer, per expert usage counts that seed the split of the budget across layers
    /// (`layers x experts`, as `moe profile` writes them in usage.csv); nil = an even start.
    public var seedCounts: [[Double]]?
    /// Re-split the budget across layers from the routing seen, every this many tokens (0: never;
    /// the split then stays as seeded).
    public var rebalanceInterval: Int

    /// A store of `budget` bytes with LRU eviction, prefetching and 4 I/O threads.
    public init(budget: Int, policy: ExpertEvictionPolicy = .lru, prefetch: Bool = true, ioThreads: Int = 4,
                directIO: Bool = true, seedCounts: [[Double]]? = nil, rebalanceInterval: Int = 32) {
        self.budget = budget
        self.policy = policy
        self.prefetch = prefetch
        self.ioThreads = ioThreads
        self.directIO = directIO
        self.seedCounts = seedCounts
        self.rebalanceInterval = rebalanceInterval
    }

    /// Reads per-layer expert counts from a `usage.csv` written by `moe profile` (columns
    /// `layer,expert,selected,...`) for `seedCounts`: `layers x experts` as the file lists them
    /// (the store checks them against the model). Lines that do not parse are errors.
    public static func seedCounts(usageCSV text: String) throws(MoEError) -> [[Double]] {
        var entries: [(Int, Int, Double)] = []
        var lineNumber = 0
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            lineNumber += 1
            if lineNumber == 1 {
                guard line.hasPrefix("layer,expert,selected") else {
                    throw MoEError(.invalidArgument, "an expert profile must be the usage.csv that `moe profile` writes (header 'layer,expert,selected,...'); this one starts with '\(line.prefix(40))'")
                }
                continue
            }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count >= 3, let l = Int(fields[0]), let e = Int(fields[1]), let n = Double(fields[2]),
                  n >= 0, n.isFinite, l >= 0, l < 4096, e >= 0, e < 65536 else {
                throw MoEError(.invalidArgument, "expert profile line \(lineNumber) is not 'layer,expert,selected,...' with a layer below 4096 and an expert below 65536: '\(line.prefix(60))'")
            }
            entries.append((l, e, n))
        }
        guard !entries.isEmpty else { throw MoEError(.invalidArgument, "the expert profile lists no experts") }
        let layers = entries.map(\.0).max()! + 1, experts = entries.map(\.1).max()! + 1
        var counts = [[Double]](repeating: [Double](repeating: 0, count: experts), count: layers)
        for (l, e, n) in entries { counts[l][e] += n }
        return counts
    }
}

/// Byte sizes as the command line and scripts spell them.
public enum ByteSize {
    /// Parses plain bytes or a number with a binary suffix `K`, `M`, `G`, `T` (optionally
    /// followed by `B` or `iB`, any case; fractions allowed: `1.5G`). Nil when it does not parse,
    /// is negative or overflows.
    public static func parse(_ text: String) -> Int? {
        var s = Substring(text.trimmingSpaces())
        guard !s.isEmpty else { return nil }
        let lower = s.lowercased()
        if lower.hasSuffix("ib") { s = s.dropLast(2) } else if lower.hasSuffix("b") { s = s.dropLast() }
        var multiplier = 1.0
        if let last = s.last, let shift = ["k": 10, "m": 20, "g": 30, "t": 40][String(last).lowercased()] {
            multiplier = Double(1 << shift)
            s = s.dropLast()
        }
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(s) else { return nil }
        let bytes = (value * multiplier).rounded(.down)
        guard bytes.isFinite, bytes >= 0, bytes < 9.0e18 else { return nil }
        return Int(bytes)
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
