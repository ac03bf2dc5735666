#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The MoE router: logits over all experts → gating probabilities → top-k → expert weights.
/// One implementation configured by `Options`; architectures differ only in their options.
public struct Router: Sendable {
    /// The gating function applied to the router logits.
    public enum Gating: Sendable {
        /// Softmax over all experts (Mixtral, Qwen-MoE, OLMoE).
        case softmax
        /// An independent sigmoid per expert (DeepSeek-V3 style).
        case sigmoid
    }

    /// How an architecture routes.
    public struct Options: Sendable {
        /// The gating function.
        public var gating: Gating = .softmax
        /// Whether the chosen experts' weights are divided by their sum.
        public var normalizeTopK: Bool = false
        /// A factor applied to the final weights (1 = none).
        public var scale: Float = 1

        /// Options with every field defaulted.
        public init(gating: Gating = .softmax, normalizeTopK: Bool = false, scale: Float = 1) {
            self.gating = gating
            self.normalizeTopK = normalizeTopK
            self.scale = scale
        }
    }

    /// The options in force.
    public let options: Options

    /// A router with `options`.
    public init(options: Options) { self.options = options }

    /// Turns `logits` (one per expert) into probabilities in place.
    public func gate(_ logits: UnsafeMutableBufferPointer<Float>) {
        switch options.gating {
        case .softmax:
            var maxValue = -Float.infinity
            for v in logits { maxValue = max(maxValue, v) }
            var sum = 0.0
            for i in logits.indices {
                logits[i] = expf(logits[i] - maxValue)
                sum += Double(logits[i])
            }
            let inv = Float(1 / sum)
            for i in logits.indices { logits[i] *= inv }
        case .sigmoid:
            for i in logits.indices { logits[i] = 1 / (1 + expf(-logits[i])) }
        }
    }

    /// Picks the `k` experts with the largest probabilities (ties go to the lower index) and
    /// writes their ids and weights, in descending order of probability.
    public func topK(_ probs: UnsafeBufferPointer<Float>, k: Int,
                     ids: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>) {
        var count = 0
        for (e, p) in probs.enumerated() {
            // Insertion into a sorted list of at most k entries; k is small (2-8).
            var at = count
            while at > 0 && p > weights[at - 1] { at -= 1 }
            guard at < k else { continue }
            var j = min(count, k - 1)
            while j > at {
                ids[j] = ids[j - 1]
                weights[j] = weights[j - 1]
                j -= 1
            }
            ids[at] = Int32(e)
            weights[at] = p
            count = min(count + 1, k)
        }
        if options.normalizeTopK {
            var sum: Float = 0
            for i in 0..<k { sum += weights[i] }
            sum = max(sum, 6.103515625e-5)  // as llama.cpp: never divide by (almost) zero
            for i in 0..<k { weights[i] /= sum }
        }
        if options.scale != 1 {
            for i in 0..<k { weights[i] *= options.scale }
        }
    }
}
