/// Where a session's evaluation time went, summed since the session was made or
/// `Session.resetTimings()`: wall-clock nanoseconds of the calling thread in each phase of the
/// forward pass. The phases add up to the evaluation time plus `overlapped`; `waiting` is the
/// part of it (inside the phases) in which the calling thread had nothing to do.
public struct ForwardTimings: Sendable, Equatable {
    /// Norms, Q/K/V and output projections, RoPE, the KV cache and attention itself.
    public var attention: UInt64 = 0
    /// The routers: expert choice for each token, and the guesses that drive prefetching.
    public var router: UInt64 = 0
    /// Routed and shared experts (gate, up, SiLU, down, the weighted sum) and dense FFNs.
    public var experts: UInt64 = 0
    /// The embedding lookup, the final norm and the vocabulary logits.
    public var output: UInt64 = 0
    /// Time inside the phases spent waiting: for the expert store's reads, and for the pool's
    /// other threads to finish their share of a parallel loop.
    public var waiting: UInt64 = 0
    /// Time two halves of a batch ran at the same time (`Session.evaluate(together:)`, where one
    /// half's attention runs while the other's experts do): the phases of both halves are
    /// counted, so their sum exceeds the wall time by this much.
    public var overlapped: UInt64 = 0
    /// Tokens evaluated (each token of a batch counts once).
    public var tokens: Int = 0
    /// Routed experts run, summed over layers and steps: an expert that several tokens of one
    /// step chose (a prompt, or sequences decoded together) counts once, as its weights are
    /// read once for all of them. One token at a time, this is top-k per layer.
    public var expertsRun: Int = 0
    /// Forward steps: calls that read every layer's weights once (a prompt, a batch of
    /// sequences, or one token).
    public var steps: Int = 0

    /// A zero record.
    public init() {}

    /// Adds another record's times and tokens to this one.
    public mutating func add(_ other: ForwardTimings) {
        attention &+= other.attention
        router &+= other.router
        experts &+= other.experts
        output &+= other.output
        waiting &+= other.waiting
        overlapped &+= other.overlapped
        tokens += other.tokens
        expertsRun += other.expertsRun
        steps += other.steps
    }

    /// The sum of the phases, in nanoseconds.
    public var total: UInt64 { attention &+ router &+ experts &+ output }

    /// The wall-clock time: the phases less the time two halves of a batch overlapped.
    public var wall: UInt64 { total &- min(total, overlapped) }

    /// Routed experts run per step and layer, given the number of layers with routed experts
    /// (0 before any step).
    public func expertsPerStep(layers: Int) -> Double {
        steps > 0 && layers > 0 ? Double(expertsRun) / Double(steps * layers) : 0
    }

    /// Nanoseconds per token of `value` (0 before any token).
    public func perToken(_ value: UInt64) -> Double { tokens > 0 ? Double(value) / Double(tokens) : 0 }
}

/// The phases `ForwardState.lap` charges time to.
enum ForwardPhase {
    case attention, router, experts, output
}
