/// Expert-utilization statistics computed from a routing trace: per expert, per layer, and the
/// expert-cache hit rate against budget for each eviction policy. `moe profile` writes them as
/// `report.json` (schema in docs/PROFILING.md).
public struct ExpertProfile: Sendable {
    /// One expert of one layer.
    public struct Expert: Sendable {
        /// Times the router chose it.
        public var selected = 0
        /// Sum of its routing weights.
        public var totalWeight = 0.0
        /// How often it was chosen at each rank (0 = highest weight).
        public var rankCounts: [Int]
        /// Mean routing weight when chosen (0 if never chosen).
        public var meanWeight: Double { selected == 0 ? 0 : totalWeight / Double(selected) }
    }

    /// One layer's figures.
    public struct Layer: Sendable {
        /// The layer index.
        public var index: Int
        /// Per-expert figures.
        public var experts: [Expert]
        /// The busiest expert's count over the mean count.
        public var maxOverMean: Double
        /// Standard deviation of the counts over their mean.
        public var coefficientOfVariation: Double
        /// Entropy of the usage distribution in bits (log2(experts) when perfectly even).
        public var entropyBits: Double
        /// Experts never chosen.
        public var unused: Int
        /// The fewest experts that together take at least 50% of the choices.
        public var expertsForHalf: Int
        /// [a][b]: tokens for which experts a and b were both chosen (symmetric, diagonal 0).
        public var coactivation: [[Int]]
        /// Reuse distance histogram: for each bucket of `ExpertProfile.reuseBuckets`, how many times
        /// an expert was chosen again that many tokens after its previous use.
        public var reuseHistogram: [Int]
        /// Mean tokens between two uses of the same expert. Over a long run this tends to
        /// experts / k whatever the routing, so `medianReuseDistance` says more.
        public var meanReuseDistance: Double
        /// Median tokens between two uses of the same expert: small when favourites are reused quickly.
        public var medianReuseDistance: Double
        /// Fraction of tokens that share at least one expert with the previous token.
        public var nextTokenReuse: Double
    }

    /// Upper bounds (inclusive) of the reuse-distance buckets; the last bucket is open.
    public static let reuseBuckets = [1, 2, 3, 4, 8, 16, 32, 64, Int.max]

    /// Tokens profiled.
    public let tokens: Int
    /// Layers, experts per layer, experts per token.
    public let layers: Int, experts: Int, k: Int
    /// Per-layer figures.
    public let layerStats: [Layer]
    /// Hit rate for each policy at 1...experts resident experts per layer.
    public let cacheCurves: [CacheSimulator.Policy: [Double]]

    /// Computes every figure from `trace`.
    public init(trace: RoutingTrace) {
        tokens = trace.tokens
        layers = trace.layers
        experts = trace.experts
        k = trace.k
        var stats: [Layer] = []
        for l in 0..<trace.layers {
            stats.append(ExpertProfile.layer(l, trace))
        }
        layerStats = stats
        var curves: [CacheSimulator.Policy: [Double]] = [:]
        for policy in CacheSimulator.Policy.allCases {
            curves[policy] = (1...max(trace.experts, 1)).map { CacheSimulator.hitRate(trace, slots: $0, policy: policy) }
        }
        cacheCurves = curves
    }

    private static func layer(_ l: Int, _ trace: RoutingTrace) -> Layer {
        let e = trace.experts, k = trace.k
        var experts = [Expert](repeating: Expert(rankCounts: [Int](repeating: 0, count: k)), count: e)
        var co = [[Int]](repeating: [Int](repeating: 0, count: e), count: e)
        var hist = [Int](repeating: 0, count: reuseBuckets.count)
        var lastSeen = [Int](repeating: -1, count: e)
        var distanceSum = 0, distanceCount = 0, sharedWithPrevious = 0
        var distances: [Int] = []
        var previous: Set<Int32> = []
        for t in 0..<trace.tokens {
            let choice = trace.choice(token: t, layer: l)
            let base = (t * trace.layers + l) * k
            for (rank, id) in choice.enumerated() where id >= 0 && Int(id) < e {
                let x = Int(id)
                experts[x].selected += 1
                experts[x].rankCounts[rank] += 1
                if !trace.weights.isEmpty { experts[x].totalWeight += Double(trace.weights[base + rank]) }
                if lastSeen[x] >= 0 {
                    let d = t - lastSeen[x]
                    hist[reuseBuckets.firstIndex { d <= $0 }!] += 1
                    distanceSum += d
                    distanceCount += 1
                    distances.append(d)
                }
                lastSeen[x] = t
            }
            let ids = choice.map { Int($0) }.filter { $0 >= 0 && $0 < e }
            for a in ids { for b in ids where a != b { co[a][b] += 1 } }
            let current = Set(choice)
            if t > 0 && !current.isDisjoint(with: previous) { sharedWithPrevious += 1 }
            previous = current
        }
        let counts = experts.map { Double($0.selected) }
        let total = counts.reduce(0, +)
        let mean = e == 0 ? 0 : total / Double(e)
        let variance = e == 0 ? 0 : counts.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(e)
        var entropy = 0.0
        for c in counts where c > 0 {
            let p = c / total
            entropy -= p * log2(p)
        }
        var half = 0, acc = 0.0
        for c in counts.sorted(by: >) where acc < total / 2 {
            acc += c
            half += 1
        }
        return Layer(index: l, experts: experts, maxOverMean: mean > 0 ? (counts.max() ?? 0) / mean : 0,
                     coefficientOfVariation: mean > 0 ? variance.squareRoot() / mean : 0, entropyBits: entropy,
                     unused: counts.filter { $0 == 0 }.count, expertsForHalf: half, coactivation: co,
                     reuseHistogram: hist, meanReuseDistance: distanceCount == 0 ? 0 : Double(distanceSum) / Double(distanceCount),
                     medianReuseDistance: median(distances),
                     nextTokenReuse: trace.tokens > 1 ? Double(sharedWithPrevious) / Double(trace.tokens - 1) : 0)
    }

    private static func median(_ values: [Int]) -> Double {
        guard !values.isEmpty else { return 0 }
        let v = values.sorted()
        return v.count % 2 == 1 ? Double(v[v.count / 2]) : Double(v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    /// The smallest number of resident experts per layer at which `policy` reaches `hitRate`, or nil.
    public func slotsNeeded(for hitRate: Double, policy: CacheSimulator.Policy) -> Int? {
        guard let curve = cacheCurves[policy], let i = curve.firstIndex(where: { $0 >= hitRate }) else { return nil }
        return i + 1
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
