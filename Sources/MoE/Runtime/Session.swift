/// Which logits `Session.evaluate` returns.
public enum LogitsSelection: Sendable {
    /// The last position's logits: `vocabulary` floats.
    case last
    /// Every evaluated position's logits, position by position: `count * vocabulary` floats.
    case all
}

/// One sequence being evaluated on a `Model`: its KV cache, position and scratch buffers, all
/// allocated once at creation. Sessions on the same model are independent; use each from one
/// thread at a time (different sessions may run on different threads at once).
public final class Session {
    /// The model this session evaluates.
    public let model: Model
    /// The most tokens the session holds.
    public let contextLength: Int
    /// Threads that compute this session's tokens, the caller included.
    public var threads: Int { state.pool.threads }
    /// How many tokens have been evaluated (the next token's position).
    public private(set) var position = 0
    let state: ForwardState

    /// A session for up to `contextLength` tokens, computing on `threads` threads (the caller
    /// included). Refuses lengths that are not positive or whose KV cache would exceed 64 GiB,
    /// before allocating anything.
    init(model: Model, contextLength: Int, threads: Int) throws(MoEError) {
        let c = model.config
        guard contextLength > 0 else {
            throw MoEError(.invalidArgument, "context length \(contextLength) must be positive")
        }
        let perToken = c.layers * c.kvHeads * (c.headDimension + c.valueDimension) * 2
        let (bytes, overflow) = perToken.multipliedReportingOverflow(by: contextLength)
        guard !overflow, bytes <= 64 << 30 else {
            throw MoEError(.outOfMemory, "a context of \(contextLength) tokens needs a \(overflow ? "huge" : "\(bytes >> 20) MiB") KV cache; the limit is 64 GiB")
        }
        let physical = Session.physicalMemory
        guard physical == 0 || bytes <= physical else {
            throw MoEError(.outOfMemory, "a context of \(contextLength) tokens needs a \(bytes >> 20) MiB KV cache, more than this machine's \(physical >> 20) MiB of memory; use a shorter context")
        }
        self.model = model
        self.contextLength = contextLength
        guard threads >= 1 && threads <= 1024 else {
            throw MoEError(.invalidArgument, "thread count \(threads) must be between 1 and 1024")
        }
        self.state = ForwardState(model: model, contextLength: contextLength, threads: threads)
    }

    /// This machine's physical memory in bytes (0 when unknown).
    static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 0 }
        let (product, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? 0 : product
    }()

    /// Evaluates `tokens` at the next positions (a prompt in one call, or one token at a time)
    /// and returns logits as `selection` says. Token ids out of range, an empty list and a
    /// context overflow are errors, and then nothing is evaluated.
    public func evaluate(_ tokens: [Int32], logits selection: LogitsSelection = .last) throws(MoEError) -> [Float] {
        let vocabulary = model.config.vocabulary
        guard !tokens.isEmpty else { throw MoEError(.invalidArgument, "no tokens to evaluate") }
        for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= vocabulary {
            throw MoEError(.invalidArgument, "token \(i) has id \(t), outside the vocabulary 0..<\(vocabulary)")
        }
        guard position + tokens.count <= contextLength else {
            throw MoEError(.invalidArgument, "\(tokens.count) tokens at position \(position) overflow the context of \(contextLength)")
        }
        var out = [Float](repeating: 0, count: selection == .all ? tokens.count * vocabulary : vocabulary)
        try out.withUnsafeMutableBufferPointer { (buffer) throws(MoEError) in
            if tokens.count == 1 {
                try model.forward(token: Int(tokens[0]), position: position, state: state, logits: buffer.baseAddress!)
                position += 1
                return
            }
            // Prompts go layer by layer in steps of up to Model.promptStep tokens.
            try tokens.withUnsafeBufferPointer { (all) throws(MoEError) in
                var first = 0
                while first < all.count {
                    let n = min(Model.promptStep, all.count - first)
                    let step = UnsafeBufferPointer(rebasing: all[first..<(first + n)])
                    let base = first
                    try model.forward(batch: step, position: position, state: state) { t in
                        let i = base + t
                        if selection == .all { return buffer.baseAddress! + i * vocabulary }
                        return i == tokens.count - 1 ? buffer.baseAddress! : nil
                    }
                    position += n
                    first += n
                }
            }
        }
        return out
    }

    /// Whether a batch on `threads` threads runs as two overlapped halves unless told otherwise:
    /// only above two threads. On two, every phase already keeps both threads busy, so the
    /// overlap only adds the second read of experts both halves chose and halves each matrix
    /// product's batch: olmoe 4-sequence decode, overlapped vs one batch, Zen 1 19.19-20.50 vs
    /// 19.54-21.03 t/s, Zen 5 Q4_0 64.1-66.8 vs 69.0-69.3, Q4_K 68.2 vs 87.7.
    public static func overlapsByDefault(threads: Int) -> Bool { threads > 2 }

    /// Evaluates one token for each of `sessions` in a single pass (batched decode: several
    /// sequences, one step each) and returns each session's logits for its token, in order. Every
    /// weight matrix is read once for the whole batch, so N sequences cost far less than N
    /// separate steps; each session gets bit for bit the logits `evaluate([token])` would give it.
    /// With `overlap` on more than one thread and without an expert store, the batch runs as two
    /// halves half a layer apart, so that one half's attention overlaps the other half's expert
    /// FFNs (an expert both halves chose is then read once per half); otherwise each expert
    /// chosen by any session is read once for all. `nil` (the default) overlaps where
    /// `overlapsByDefault(threads:)` says so. The pass runs on the
    /// first session's threads and scratch; timings are charged to the first session. The
    /// sessions must be distinct, on the same model, at most `Model.batchCapacity` (64) of them,
    /// each with room for one more token; otherwise nothing is evaluated and the error says why.
    public static func evaluate(together sessions: [Session], tokens: [Int32], overlap: Bool? = nil) throws(MoEError) -> [[Float]] {
        guard let lead = sessions.first else { throw MoEError(.invalidArgument, "no sessions to evaluate") }
        guard tokens.count == sessions.count else {
            throw MoEError(.invalidArgument, "\(tokens.count) tokens for \(sessions.count) sessions; give one token per session")
        }
        guard sessions.count <= Model.batchCapacity else {
            throw MoEError(.invalidArgument, "\(sessions.count) sessions in one batch; at most \(Model.batchCapacity)")
        }
        let model = lead.model, vocabulary = model.config.vocabulary
        var seen = Set<ObjectIdentifier>()
        for (i, session) in sessions.enumerated() {
            guard session.model === model else { throw MoEError(.invalidArgument, "session \(i) belongs to a different model") }
            guard seen.insert(ObjectIdentifier(session)).inserted else {
                throw MoEError(.invalidArgument, "session \(i) appears twice in the batch")
            }
            guard session.position < session.contextLength else {
                throw MoEError(.invalidArgument, "session \(i) is full (\(session.contextLength) tokens)")
            }
            let t = tokens[i]
            guard t >= 0 && Int(t) < vocabulary else {
                throw MoEError(.invalidArgument, "token \(i) has id \(t), outside the vocabulary 0..<\(vocabulary)")
            }
        }
        if sessions.count == 1 { return [try lead.evaluate(tokens)] }
        var out = [Float](repeating: 0, count: sessions.count * vocabulary)
        try out.withUnsafeMutableBufferPointer { (buffer) throws(MoEError) in
            try tokens.withUnsafeBufferPointer { (all) throws(MoEError) in
                let logits = { (t: Int) -> UnsafeMutablePointer<Float>? in buffer.baseAddress! + t * vocabulary }
                if overlap ?? overlapsByDefault(threads: lead.threads), model.canOverlap, lead.threads > 1 {
                    try model.forward(overlapping: all, positions: { sessions[$0].position }, owners: { sessions[$0].state },
                                      state: lead.state, logits: logits)
                } else {
                    try model.forward(batch: all, positions: { sessions[$0].position }, owners: { sessions[$0].state },
                                      state: lead.state, logits: logits)
                }
            }
        }
        for session in sessions { session.position += 1 }
        return (0..<sessions.count).map { Array(out[($0 * vocabulary)..<(($0 + 1) * vocabulary)]) }
    }

    /// Where this session's evaluation time went since it was made or `resetTimings()`: per
    /// phase (attention, router, experts, output) and the part of it spent waiting.
    public var timings: ForwardTimings { state.currentTimings }

    /// Zeroes `timings`.
    public func resetTimings() { state.resetTimings() }

    /// How many times each routed expert was chosen by this session's tokens, layer-major
    /// (`layers x experts` counts; empty for a dense model). Every evaluated token adds
    /// `expertsUsed` to each layer's row. `reset` keeps the counts; `resetExpertCounts` clears them.
    public var expertCounts: [UInt64] {
        Array(UnsafeBufferPointer(start: state.expertCounts, count: state.expertCountsSize))
    }

    /// Whether the session records every routing decision in `routingTrace`.
    public var recordsRouting: Bool {
        get { state.recordRouting }
        set { state.recordRouting = newValue }
    }

    /// The routing decisions recorded while `recordsRouting` was on: for each evaluated token,
    /// for each layer, the `expertsUsed` chosen expert ids (token-major, then layer).
    public var routingTrace: [Int32] { state.routingLog }

    /// The routing weights that go with `routingTrace`, one per chosen expert (after the
    /// architecture's normalisation and scaling: what the expert's output is multiplied by).
    public var routingWeights: [Float] { state.routingWeightLog }

    /// Empties `routingTrace` and `routingWeights`.
    public func clearRoutingTrace() {
        state.routingLog.removeAll(keepingCapacity: true)
        state.routingWeightLog.removeAll(keepingCapacity: true)
    }

    /// Sets every expert count to zero.
    public func resetExpertCounts() {
        state.expertCounts.update(repeating: 0, count: state.expertCountsSize)
    }

    /// Forgets every token: the next evaluation starts at position 0.
    public func reset() { position = 0 }

    /// Keeps the first `count` tokens and forgets the rest.
    public func truncate(to count: Int) throws(MoEError) {
        guard count >= 0 && count <= position else {
            throw MoEError(.invalidArgument, "cannot truncate \(position) tokens to \(count)")
        }
        position = count
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
