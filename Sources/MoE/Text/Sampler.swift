/// How the next token is chosen from the logits. The stages run in llama.cpp's default order:
/// penalties over the recent window, top-k, top-p, min-p, temperature, then a draw from the
/// remaining distribution. `temperature <= 0` is greedy (the highest logit after penalties).
public struct SamplingOptions: Sendable, Equatable {
    /// Softmax temperature; 0 or less means greedy.
    public var temperature: Float = 0.8
    /// Keep only the k most likely tokens (0: all).
    public var topK: Int = 40
    /// Keep the smallest set of tokens whose probability adds up to at least p (1: all).
    public var topP: Float = 0.95
    /// Drop tokens less likely than min-p times the most likely one (0: none).
    public var minP: Float = 0.05
    /// Divide positive (multiply negative) logits of tokens seen in the window (1: off).
    public var repetitionPenalty: Float = 1.0
    /// Subtract this times the token's count in the window (0: off).
    public var frequencyPenalty: Float = 0
    /// Subtract this once for any token present in the window (0: off).
    public var presencePenalty: Float = 0
    /// How many recent tokens the penalties look at.
    public var penaltyWindow: Int = 64
    /// The random seed: the same seed, options and model give the same tokens.
    public var seed: UInt64 = 0

    /// Default options (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05), seed 0.
    public init() {}

    /// Greedy decoding: always the most likely token.
    public static var greedy: SamplingOptions {
        var o = SamplingOptions()
        o.temperature = 0
        return o
    }

    /// Checks every option's range.
    public func validate() throws(MoEError) {
        func bad(_ what: String) -> MoEError { MoEError(.invalidArgument, what) }
        guard temperature.isFinite else { throw bad("temperature must be a finite number") }
        guard topK >= 0 else { throw bad("top-k must be 0 (off) or more, not \(topK)") }
        guard topP > 0, topP <= 1 else { throw bad("top-p must be in (0, 1], not \(topP)") }
        guard minP >= 0, minP <= 1 else { throw bad("min-p must be in [0, 1], not \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else { throw bad("the repetition penalty must be positive, not \(repetitionPenalty)") }
        guard frequencyPenalty.isFinite, presencePenalty.isFinite else { throw bad("penalties must be finite numbers") }
        guard penaltyWindow >= 0 else { throw bad("the penalty window must be 0 or more tokens") }
    }
}

/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64): the same seed
/// gives the same sequence on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// A uniform double in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// Picks tokens from logits with `SamplingOptions`, remembering the recent tokens the
/// penalties need. One sampler per generation.
public struct Sampler: Sendable {
    /// The options in use.
    public let options: SamplingOptions
    private var rng: SeededGenerator
    private var recent: [Int32] = []
    private var candidates: [(id: Int32, logit: Float)] = []

    /// A sampler; throws when an option is out of range.
    public init(_ options: SamplingOptions) throws(MoEError) {
        try options.validate()
        self.options = options
        rng = SeededGenerator(seed: options.seed)
    }

    /// Records a token as generated or given (the penalties look at these).
    public mutating func accept(_ id: Int32) {
        guard options.penaltyWindow > 0 else { return }
        recent.append(id)
        if recent.count > options.penaltyWindow { recent.removeFirst(recent.count - options.penaltyWindow) }
    }

    /// Chooses the next token from `logits` (one per vocabulary entry).
    public mutating func sample(_ logits: [Float]) -> Int32 {
        let o = options
        candidates.removeAll(keepingCapacity: true)
        candidates.reserveCapacity(logits.count)
        for (i, l) in logits.enumerated() { candidates.append((Int32(i), l.isNaN ? -.infinity : l)) }
        applyPenalties()
        if o.temperature <= 0 {
            // Greedy: the highest logit, the lowest id on ties.
            var best = 0
            for i in 1..<candidates.count where candidates[i].logit > candidates[best].logit { best = i }
            return candidates[best].id
        }
        // The top-k by logit (ties: lower id first), sorted. With k much smaller than the
        // vocabulary a bounded heap is O(n log k) instead of sorting all n candidates.
        if o.topK > 0 && o.topK < candidates.count {
            candidates = Sampler.best(candidates, k: o.topK)
        } else {
            candidates.sort(by: Sampler.before)
        }
        var probs = Sampler.softmax(candidates.map(\.logit), temperature: 1)
        if o.topP < 1 {
            var sum: Float = 0
            var keep = candidates.count
            for (i, p) in probs.enumerated() {
                sum += p
                if sum >= o.topP { keep = i + 1; break }
            }
            candidates.removeLast(candidates.count - keep)
            probs.removeLast(probs.count - keep)
        }
        if o.minP > 0, let top = probs.first {
            let threshold = top * o.minP
            let keep = max(1, probs.firstIndex { $0 < threshold } ?? probs.count)
            candidates.removeLast(candidates.count - keep)
        }
        probs = Sampler.softmax(candidates.map(\.logit), temperature: o.temperature)
        let u = Float(rng.unit())
        var acc: Float = 0
        for (i, p) in probs.enumerated() {
            acc += p
            if u < acc { return candidates[i].id }
        }
        return candidates[candidates.count - 1].id
    }

    /// The order of candidates: higher logit first, then lower id.
    static func before(_ a: (id: Int32, logit: Float), _ b: (id: Int32, logit: Float)) -> Bool {
        a.logit != b.logit ? a.logit > b.logit : a.id < b.id
    }

    /// The `k` first candidates in `before` order, sorted, kept with a min-heap of size k whose
    /// root is the worst candidate kept so far.
    static func best(_ all: [(id: Int32, logit: Float)], k: Int) -> [(id: Int32, logit: Float)] {
        var heap: [(id: Int32, logit: Float)] = []
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var p = start
            while true {
                let l = 2 * p + 1, r = l + 1
                var worst = p
                if l < heap.count && before(heap[worst], heap[l]) { worst = l }
                if r < heap.count && before(heap[worst], heap[r]) { worst = r }
                if worst == p { return }
                heap.swapAt(p, worst)
                p = worst
            }
        }
        for c in all {
            if heap.count < k {
                heap.append(c)
                var i = heap.count - 1
                while i > 0 {
                    let parent = (i - 1) / 2
                    guard before(heap[parent], heap[i]) else { break }
                    heap.swapAt(parent, i)
                    i = parent
                }
            } else if before(c, heap[0]) {
                heap[0] = c
                siftDown(0)
            }
        }
        heap.sort(by: before)
        return heap
    }

    private mutating func applyPenalties() {
        let o = options
        guard !recent.isEmpty, o.repetitionPenalty != 1 || o.frequencyPenalty != 0 || o.presencePenalty != 0 else { return }
        var counts: [Int32: Int] = [:]
        for t in recent { counts[t, default: 0] += 1 }
        for (t, c) in counts where t >= 0 && Int(t) < candidates.count {
            var l = candidates[Int(t)].logit
            l = l <= 0 ? l * o.repetitionPenalty : l / o.repetitionPenalty
            l -= Float(c) * o.frequencyPenalty + o.presencePenalty
            candidates[Int(t)].logit = l
        }
    }

    /// Softmax of `logits / temperature`, computed stably.
    static func softmax(_ logits: [Float], temperature: Float) -> [Float] {
        guard let m = logits.max(), m.isFinite else {
            return logits.isEmpty ? [] : [Float](repeating: 1 / Float(logits.count), count: logits.count)
        }
        var e = logits.map { expf(($0 - m) / temperature) }
        let s = e.reduce(0, +)
        for i in e.indices { e[i] /= s }
        return e
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
