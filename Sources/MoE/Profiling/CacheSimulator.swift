/// The routing decisions of a run: for each token, for each layer, the k chosen experts.
public struct RoutingTrace: Sendable {
    /// Transformer blocks.
    public let layers: Int
    /// Routed experts per layer.
    public let experts: Int
    /// Experts chosen per token and layer.
    public let k: Int
    /// Chosen ids, token-major, then layer, then rank (rank 0 = the highest routing weight).
    public let ids: [Int32]
    /// The routing weight of each choice (same layout as `ids`); empty when not recorded.
    public let weights: [Float]

    /// A trace over `ids` (its length must be a multiple of `layers * k`) and, optionally,
    /// their routing weights.
    public init(layers: Int, experts: Int, k: Int, ids: [Int32], weights: [Float] = []) {
        self.layers = layers
        self.experts = experts
        self.k = k
        let whole = layers * k == 0 ? 0 : ids.count / (layers * k) * layers * k
        self.ids = Array(ids.prefix(whole))
        self.weights = weights.count >= whole ? Array(weights.prefix(whole)) : []
    }

    /// The trace a session recorded (`Session.recordsRouting`).
    public init(session: Session) {
        let c = session.model.config
        self.init(layers: c.layers, experts: c.experts, k: c.expertsUsed, ids: session.routingTrace, weights: session.routingWeights)
    }

    /// How many tokens the trace covers.
    public var tokens: Int { layers * k == 0 ? 0 : ids.count / (layers * k) }

    /// The experts chosen for `token` at `layer`.
    public func choice(token: Int, layer: Int) -> ArraySlice<Int32> {
        let start = (token * layers + layer) * k
        return ids[start..<(start + k)]
    }

    /// Per layer, how often each expert was chosen.
    public func counts() -> [[Int]] {
        var c = [[Int]](repeating: [Int](repeating: 0, count: experts), count: layers)
        for t in 0..<tokens {
            for l in 0..<layers {
                for e in choice(token: t, layer: l) where e >= 0 && Int(e) < experts { c[l][Int(e)] += 1 }
            }
        }
        return c
    }
}

/// Replays a routing trace through an expert cache of a given size per layer and counts hits:
/// how often a chosen expert was already resident. Experts needed by the same token are pinned
/// while it runs (never evicted for each other).
public enum CacheSimulator {
    /// Eviction rules.
    public enum Policy: String, Sendable, CaseIterable {
        /// Evict the least recently used expert.
        case lru
        /// Evict the least frequently used expert, counts halving every `2 * experts` uses of the layer.
        case lfu
        /// Evict the expert whose next use is farthest in the future (Belady's optimum; needs the
        /// whole trace, so it is a bound, not a policy a runtime can run).
        case belady
    }

    /// The fraction of expert uses that hit with `slots` experts resident per layer.
    public static func hitRate(_ trace: RoutingTrace, slots: Int, policy: Policy) -> Double {
        var hits = 0, uses = 0
        for l in 0..<trace.layers {
            let sequence = (0..<trace.tokens).map { Array(trace.choice(token: $0, layer: l)) }
            let (h, u) = simulateLayer(sequence, experts: trace.experts, slots: slots, policy: policy)
            hits += h
            uses += u
        }
        return uses == 0 ? 0 : Double(hits) / Double(uses)
    }

    /// Hits and uses for one layer's sequence of choices.
    static func simulateLayer(_ sequence: [[Int32]], experts: Int, slots: Int, policy: Policy) -> (hits: Int, uses: Int) {
        guard slots > 0 else { return (0, sequence.reduce(0) { $0 + $1.count }) }
        var resident = Set<Int32>()
        var lastUse = [Int32: Int]()
        var frequency = [Int32: Double]()
        var hits = 0, uses = 0, clock = 0
        // For Belady: for each step, the next step at which each expert is used.
        var nextUse: [[Int32: Int]] = []
        if policy == .belady {
            nextUse = [[Int32: Int]](repeating: [:], count: sequence.count)
            var upcoming = [Int32: Int]()
            for t in stride(from: sequence.count - 1, through: 0, by: -1) {
                nextUse[t] = upcoming
                for e in sequence[t] { upcoming[e] = t }
            }
        }
        let decayEvery = max(2 * experts, 1)
        for (t, choice) in sequence.enumerated() {
            let pinned = Set(choice)
            for e in choice {
                uses += 1
                clock += 1
                if policy == .lfu && clock % decayEvery == 0 {
                    for key in frequency.keys { frequency[key]! *= 0.5 }
                }
                frequency[e, default: 0] += 1
                if resident.contains(e) {
                    hits += 1
                } else {
                    if resident.count >= slots {
                        let candidates = resident.subtracting(pinned)
                        let victim: Int32?
                        switch policy {
                        case .lru:
                            victim = candidates.min { (lastUse[$0] ?? -1, $0) < (lastUse[$1] ?? -1, $1) }
                        case .lfu:
                            victim = candidates.min { (frequency[$0] ?? 0, lastUse[$0] ?? -1) < (frequency[$1] ?? 0, lastUse[$1] ?? -1) }
                        case .belady:
                            victim = candidates.max { (nextUse[t][$0] ?? Int.max, -$0) < (nextUse[t][$1] ?? Int.max, -$1) }
                        }
                        if let victim { resident.remove(victim) }
                    }
                    if resident.count < slots { resident.insert(e) }
                }
                lastUse[e] = clock
            }
        }
        return (hits, uses)
    }
}
