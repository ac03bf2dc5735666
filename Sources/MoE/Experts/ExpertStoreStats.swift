/// What the expert store did, per layer and in total: how often chosen experts were resident,
/// what prefetching achieved, how much was read and how long computing waited for it.
public struct ExpertStoreStats: Sendable, Equatable {
    /// Counters for one layer (or the sum over layers).
    public struct Counters: Sendable, Equatable {
        /// Chosen experts that were resident (or on their way in from a prefetch) when needed.
        public var hits = 0
        /// Chosen experts that had to be read when needed.
        public var misses = 0
        /// The hits that a prefetch brought in (a subset of `hits`).
        public var prefetchHits = 0
        /// Reads started by prefetching.
        public var prefetches = 0
        /// Prefetched experts evicted before any token used them.
        public var wastedPrefetches = 0
        /// Bytes read from the file into slots (demand reads and prefetches).
        public var bytesRead = 0
        /// Nanoseconds the computing threads waited for reads or for a free slot.
        public var stallNanoseconds = 0
        /// Experts predicted before the router ran, and how many of them it then chose.
        public var predicted = 0
        /// Predicted experts the router then chose.
        public var predictedCorrectly = 0
        /// Experts the router chose at steps where a prediction had been made.
        public var chosenAfterPrediction = 0
        /// Slots this layer holds now.
        public var residentSlots = 0
        /// Slots the current split gives this layer.
        public var quota = 0

        /// Creates zeroed counters.
        public init() {}

        /// hits / (hits + misses); 0 before any use.
        public var hitRate: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
        /// The fraction of predicted experts that the router chose.
        public var precision: Double { predicted == 0 ? 0 : Double(predictedCorrectly) / Double(predicted) }
        /// The fraction of chosen experts that had been predicted.
        public var recall: Double { chosenAfterPrediction == 0 ? 0 : Double(predictedCorrectly) / Double(chosenAfterPrediction) }
        /// Stall time in seconds.
        public var stallSeconds: Double { Double(stallNanoseconds) / 1e9 }

        static func + (a: Counters, b: Counters) -> Counters {
            var c = Counters()
            c.hits = a.hits + b.hits
            c.misses = a.misses + b.misses
            c.prefetchHits = a.prefetchHits + b.prefetchHits
            c.prefetches = a.prefetches + b.prefetches
            c.wastedPrefetches = a.wastedPrefetches + b.wastedPrefetches
            c.bytesRead = a.bytesRead + b.bytesRead
            c.stallNanoseconds = a.stallNanoseconds + b.stallNanoseconds
            c.predicted = a.predicted + b.predicted
            c.predictedCorrectly = a.predictedCorrectly + b.predictedCorrectly
            c.chosenAfterPrediction = a.chosenAfterPrediction + b.chosenAfterPrediction
            c.residentSlots = a.residentSlots + b.residentSlots
            c.quota = a.quota + b.quota
            return c
        }

        /// The counts `later` gained since `earlier`; the gauges (resident slots, quota) are
        /// `later`'s.
        static func - (later: Counters, earlier: Counters) -> Counters {
            var c = later
            c.hits -= earlier.hits
            c.misses -= earlier.misses
            c.prefetchHits -= earlier.prefetchHits
            c.prefetches -= earlier.prefetches
            c.wastedPrefetches -= earlier.wastedPrefetches
            c.bytesRead -= earlier.bytesRead
            c.stallNanoseconds -= earlier.stallNanoseconds
            c.predicted -= earlier.predicted
            c.predictedCorrectly -= earlier.predictedCorrectly
            c.chosenAfterPrediction -= earlier.chosenAfterPrediction
            return c
        }
    }

    /// Per layer (dense layers stay at zero).
    public var layers: [Counters]
    /// The budget in bytes the store was given.
    public var budget: Int
    /// Bytes one slot takes (the largest expert's three matrices, padded for aligned reads).
    public var slotBytes: Int
    /// Slots in the arena: `budget / slotBytes`.
    public var slots: Int
    /// The eviction policy.
    public var policy: ExpertEvictionPolicy
    /// Whether reads bypass the page cache (O_DIRECT / F_NOCACHE) or use pread + FADV_DONTNEED.
    public var directIO: Bool
    /// Whether experts are predicted and read ahead.
    public var prefetch: Bool

    /// The sum over layers.
    public var total: Counters { layers.reduce(Counters(), +) }

    /// What happened between `earlier` (a snapshot of the same store) and this snapshot: each
    /// layer's counts less `earlier`'s; resident slots and quota as of this snapshot.
    public func since(_ earlier: ExpertStoreStats) -> ExpertStoreStats {
        var d = self
        for l in layers.indices where l < earlier.layers.count { d.layers[l] = layers[l] - earlier.layers[l] }
        return d
    }

    /// The counts of two intervals of the same store added layer by layer; resident slots and
    /// quota as of `later`.
    public func adding(_ later: ExpertStoreStats) -> ExpertStoreStats {
        var s = later
        for l in layers.indices where l < later.layers.count {
            let gauges = (later.layers[l].residentSlots, later.layers[l].quota)
            s.layers[l] = layers[l] + later.layers[l]
            (s.layers[l].residentSlots, s.layers[l].quota) = gauges
        }
        return s
    }
}
