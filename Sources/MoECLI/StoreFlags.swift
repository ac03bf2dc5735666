import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The expert-store options every command that runs a model takes, and how they are shown.
enum StoreFlags {
    static let valued: Set<String> = ["--expert-memory", "--expert-policy", "--expert-profile", "--io-threads"]
    static let flags: Set<String> = ["--no-prefetch"]
    static let help = """
          --expert-memory SIZE keep routed experts in a RAM budget of SIZE bytes (K, M, G suffixes);
                               the rest of the model stays mapped. Default: no budget (all mapped)
          --expert-policy P    eviction when the budget is full: lru (default) or lfu
          --expert-profile F   seed the budget's split across layers from a `moe profile` usage.csv
                               (or the directory holding it)
          --no-prefetch        do not predict and read ahead each layer's experts
          --io-threads N       threads reading experts from the file (default 4)
        """

    /// The model options the flags ask for (no store when `--expert-memory` is absent or 0).
    static func options(_ p: Arguments) throws -> ModelOptions {
        guard let text = p.values["--expert-memory"] else {
            for name in valued.subtracting(["--expert-memory"]).sorted() where p.values[name] != nil {
                throw UsageError(message: "\(name) needs --expert-memory SIZE")
            }
            if p.flags.contains("--no-prefetch") { throw UsageError(message: "--no-prefetch needs --expert-memory SIZE") }
            return ModelOptions()
        }
        guard let budget = ByteSize.parse(text) else {
            throw UsageError(message: "--expert-memory needs a size such as 4G, 512M or 1073741824, not '\(text)'")
        }
        guard budget > 0 else { return ModelOptions() }
        var store = ExpertStoreOptions(budget: budget)
        if let policy = p.values["--expert-policy"] {
            guard let parsed = ExpertEvictionPolicy(rawValue: policy) else {
                throw UsageError(message: "--expert-policy is lru or lfu, not '\(policy)'")
            }
            store.policy = parsed
        }
        if let threads = p.values["--io-threads"] {
            guard let n = Int(threads), n >= 1 && n <= 64 else { throw UsageError(message: "--io-threads needs a number from 1 to 64") }
            store.ioThreads = n
        }
        store.prefetch = !p.flags.contains("--no-prefetch")
        if var path = p.values["--expert-profile"] {
            if isDirectory(path) { path += "/usage.csv" }
            store.seedCounts = try ExpertStoreOptions.seedCounts(usageCSV: try RunCommand.readText(path))
        }
        return ModelOptions(expertStore: store)
    }

    /// Opens `path` with the flags' expert store.
    static func open(_ path: String, _ p: Arguments) throws -> Model {
        try Model(path: path, options: try options(p))
    }

    /// The store's counters as `--stats` prints them: a summary line, then one line per layer.
    static func report(_ s: ExpertStoreStats) -> String {
        let t = s.total
        var out = "experts: budget \(formatBytes(s.budget)) = \(s.slots) slots of \(formatBytes(s.slotBytes)), \(s.policy.rawValue), "
            + "\(s.directIO ? "direct I/O" : "pread + FADV_DONTNEED"), prefetch \(s.prefetch ? "on" : "off")\n"
        out += "experts: hit rate \(fixed(t.hitRate * 100, 1))% (\(t.hits) hits, \(t.misses) misses), prefetch hits \(t.prefetchHits)"
            + ", wasted prefetches \(t.wastedPrefetches), read \(formatBytes(t.bytesRead)), stalled \(fixed(t.stallSeconds, 3)) s"
        if t.predicted > 0 {
            out += ", prediction precision \(fixed(t.precision * 100, 1))% recall \(fixed(t.recall * 100, 1))%"
        }
        out += "\n"
        out += "layer  slots  quota     hits   misses  pf-hits  pf-waste       read  stall-s  precision\n"
        for (l, c) in s.layers.enumerated() where c.hits + c.misses + c.residentSlots > 0 {
            out += pad(l, 5) + pad(c.residentSlots, 7) + pad(c.quota, 7) + pad(c.hits, 9) + pad(c.misses, 9)
                + pad(c.prefetchHits, 9) + pad(c.wastedPrefetches, 10) + padText(formatBytes(c.bytesRead), 11)
                + padText(fixed(c.stallSeconds, 3), 9) + padText(c.predicted > 0 ? fixed(c.precision * 100, 1) + "%" : "-", 11) + "\n"
        }
        return out
    }

    /// Whether `path` names a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private static func pad(_ n: Int, _ width: Int) -> String { padText(String(n), width) }
    private static func padText(_ s: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - s.count)) + s
    }
}
