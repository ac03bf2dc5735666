import MoEKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-session buffers for the forward pass: the KV cache (F16, as llama.cpp keeps it), every
/// intermediate activation, and the thread pool, all allocated once.
final class ForwardState {
    let pool: ThreadPool
    // Head-major, so that a head's keys (and values) are one contiguous run that the attention
    // reads front to back: position-major rows (llama.cpp's layout) put each head's 256 bytes a
    // whole row (4 KiB for OLMoE) apart, and reading them ran at a quarter of the speed.
    let keys: UnsafeMutablePointer<UInt16>    // [layer][kvHead][position][headDimension]
    let values: UnsafeMutablePointer<UInt16>  // [layer][kvHead][position][valueDimension]
    let x, h, q, k, v, attention, scores, ffnOut, gate, up, routerLogits, expertWeights: FloatStorage
    /// The normalised input of the current block, converted for the matrices that read it.
    let input: ActivationBuffer
    /// One buffer per chosen expert (and one for dense and shared FFNs) for the down projection.
    let hidden: [ActivationBuffer]
    let qHalf: UnsafeMutablePointer<UInt16>
    /// RoPE's cosines and sines at the position of the token being evaluated (filled once per token).
    let ropeTable: FloatStorage
    let expertIds: UnsafeMutablePointer<Int32>
    /// How often each expert was chosen since the session began: [layer][expert].
    let expertCounts: UnsafeMutablePointer<UInt64>
    let expertCountsSize: Int
    /// When on, every routing decision is appended here: per token, per layer, the k chosen
    /// expert ids (off by default: then the forward pass does not touch it).
    var recordRouting = false
    var routingLog: [Int32] = []
    var routingWeightLog: [Float] = []
    let contextLength: Int
    let config: ModelConfig
    let hiddenSize: Int
    /// Each chosen expert's down-projection output, `expertsUsed x embedding`, summed in rank
    /// order at the end so the result does not depend on which expert finished first.
    let expertOut: FloatStorage
    /// Expert-store slots of the chosen experts, and which are still to run / just became ready.
    let expertSlots: UnsafeMutablePointer<Int32>
    let pending: UnsafeMutablePointer<Bool>
    let ready: UnsafeMutablePointer<Bool>
    let batch: UnsafeMutablePointer<Int>
    /// Prefetching: the predicted experts of `predictedLayer` (-1: none), and scratch for the guess.
    let predictedIds: UnsafeMutablePointer<Int32>
    let predictedWeights: FloatStorage
    let predictInput: FloatStorage
    let predictLogits: FloatStorage
    var predictedLayer = -1
    /// Buffers of the batched prompt path, made on the first prompt of more than one token.
    private var batchStorage: BatchBuffers?

    /// Time per phase since the last reset; `mark` is when the current phase began.
    var timings = ForwardTimings()
    var mark: UInt64 = 0
    /// Expert-store waits since the last reset, and the pool's idle time at the last reset.
    var storeWaiting: UInt64 = 0
    var idleAtReset: UInt64 = 0

    /// Starts timing a call: the time from now to the next `lap` is charged to that lap's phase.
    @inline(__always) func startLaps() { mark = moek_monotonic_ns() }

    /// Charges the time since the last mark to `phase`.
    @inline(__always) func lap(_ phase: ForwardPhase) {
        let now = moek_monotonic_ns(), elapsed = now &- mark
        mark = now
        switch phase {
        case .attention: timings.attention &+= elapsed
        case .router: timings.router &+= elapsed
        case .experts: timings.experts &+= elapsed
        case .output: timings.output &+= elapsed
        }
    }

    /// The timings with the waits filled in.
    var currentTimings: ForwardTimings {
        var t = timings
        t.waiting = t.waiting &+ storeWaiting &+ (pool.idleNanoseconds &- idleAtReset)
        return t
    }

    /// Zeroes the timings.
    func resetTimings() {
        timings = ForwardTimings()
        storeWaiting = 0
        idleAtReset = pool.idleNanoseconds
    }

    /// Attention scores for a context longer than this session's (batches of several sessions).
    private var wideScoreStorage: FloatStorage?

    /// Scratch for `heads x context` attention scores: this session's own when the context fits
    /// in it, else a wider buffer grown on demand (a batch may attend over a longer context than
    /// the session whose scratch it uses).
    func scores(context: Int) -> UnsafeMutablePointer<Float> {
        if context <= contextLength { return scores.pointer }
        let needed = config.heads * context
        if let wide = wideScoreStorage, wide.count >= needed { return wide.pointer }
        let made = FloatStorage(zeros: needed)
        wideScoreStorage = made
        return made.pointer
    }

    /// Layer `l`'s keys in the cache: `kvHeads` runs of `contextLength` positions of
    /// `headDimension` halves (head-major).
    func keys(layer l: Int) -> UnsafeMutablePointer<UInt16> { keys + l * contextLength * config.kvHeads * config.headDimension }

    /// Layer `l`'s values in the cache, laid out as `keys(layer:)` with `valueDimension` halves.
    func values(layer l: Int) -> UnsafeMutablePointer<UInt16> { values + l * contextLength * config.kvHeads * config.valueDimension }

    /// The most tokens one batch may have: the larger of `Model.promptStep` and
    /// `Model.batchCapacity`; half of the latter for a lane state.
    let batchCapacity: Int

    /// The batched path's buffers for at least `tokens` tokens (at most `batchCapacity`): made on
    /// first use for max(tokens, 64), and made again, larger, only when a batch outgrows them, so
    /// short prompts and small decode batches never pay for a full prompt step.
    func batchBuffers(model: Model, tokens: Int) -> BatchBuffers {
        if let batchStorage, batchStorage.capacity >= tokens { return batchStorage }
        let capacity = min(batchCapacity, max(tokens, 64))
        batchStorage = nil  // the old buffers go before the new ones are zeroed
        let made = BatchBuffers(capacity: capacity, config: model.config, hiddenSize: hiddenSize, widest: model.weights.widestInput)
        batchStorage = made
        return made
    }

    private var laneStorage: ForwardState?

    /// Scratch, threads (the pool's second lane) and timings for the second half of an
    /// overlapped batch (`Model.forward(overlapping:)`); made on first use, without a KV cache of
    /// its own (the tokens attend in their owners' caches).
    func laneState(model: Model) -> ForwardState {
        if let laneStorage { return laneStorage }
        let made = ForwardState(model: model, contextLength: 1, pool: pool.secondLane ?? pool, batchCapacity: Model.batchCapacity / 2)
        laneStorage = made
        return made
    }

    convenience init(model: Model, contextLength: Int, threads: Int) {
        self.init(model: model, contextLength: contextLength, pool: ThreadPool(threads: threads), batchCapacity: max(Model.promptStep, Model.batchCapacity))
    }

    init(model: Model, contextLength: Int, pool: ThreadPool, batchCapacity: Int) {
        let c = model.config
        config = c
        self.contextLength = contextLength
        self.pool = pool
        self.batchCapacity = batchCapacity
        let kvk = c.kvHeads * c.headDimension, kvv = c.kvHeads * c.valueDimension
        keys = .allocate(capacity: c.layers * contextLength * kvk)
        values = .allocate(capacity: c.layers * contextLength * kvv)
        // The widest FFN the loaded tensors have (dense, expert or shared); not the metadata's
        // feed_forward_length, which an MoE model does not use and a hostile file can inflate.
        hiddenSize = model.weights.widestInput
        // The chosen experts' slots, plus one for the shared expert (computed alongside them).
        let slots = max(c.expertsUsed, 1) + 1
        x = FloatStorage(zeros: c.embedding)
        h = FloatStorage(zeros: c.embedding)
        q = FloatStorage(zeros: c.heads * c.headDimension)
        k = FloatStorage(zeros: kvk)
        v = FloatStorage(zeros: kvv)
        attention = FloatStorage(zeros: c.heads * c.valueDimension)
        scores = FloatStorage(zeros: c.heads * contextLength)
        ffnOut = FloatStorage(zeros: c.embedding)
        gate = FloatStorage(zeros: slots * hiddenSize)
        up = FloatStorage(zeros: slots * hiddenSize)
        routerLogits = FloatStorage(zeros: max(c.experts, 1))
        expertWeights = FloatStorage(zeros: slots)
        input = ActivationBuffer(capacity: model.weights.widestInput)
        hidden = (0..<slots).map { _ in ActivationBuffer(capacity: model.weights.widestInput) }
        qHalf = .allocate(capacity: c.heads * c.headDimension)
        ropeTable = FloatStorage(zeros: model.rope.tableCount)
        expertIds = .allocate(capacity: slots)
        expertCountsSize = c.layers * c.experts
        expertCounts = .allocate(capacity: max(expertCountsSize, 1))
        expertCounts.initialize(repeating: 0, count: max(expertCountsSize, 1))
        expertOut = FloatStorage(zeros: slots * c.embedding)
        expertSlots = .allocate(capacity: slots)
        expertSlots.initialize(repeating: -1, count: slots)
        pending = .allocate(capacity: slots)
        pending.initialize(repeating: false, count: slots)
        ready = .allocate(capacity: slots)
        ready.initialize(repeating: false, count: slots)
        batch = .allocate(capacity: slots)
        batch.initialize(repeating: 0, count: slots)
        predictedIds = .allocate(capacity: slots)
        predictedIds.initialize(repeating: 0, count: slots)
        predictedWeights = FloatStorage(zeros: slots)
        predictInput = FloatStorage(zeros: c.embedding)
        predictLogits = FloatStorage(zeros: max(c.experts, 1))
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        qHalf.deallocate()
        expertIds.deallocate()
        expertCounts.deallocate()
        expertSlots.deallocate()
        pending.deallocate()
        ready.deallocate()
        batch.deallocate()
        predictedIds.deallocate()
    }
}

extension Model {
    /// Runs one token at `position` through every layer, appending its keys and values to the
    /// cache; writes the vocabulary logits to `logits` when given. Fails only when the expert
    /// store cannot read an expert (the file changed underneath); the position is then unusable.
    func forward(token: Int, position: Int, state s: ForwardState, logits: UnsafeMutablePointer<Float>?) throws(MoEError) {
        let c = config
        let x = s.x.pointer, h = s.h.pointer
        let d = c.embedding
        s.startLaps()
        s.timings.tokens += 1
        s.timings.steps += 1
        _ = try? weights.embedding.dequantizeRow(token, into: UnsafeMutableBufferPointer(start: x, count: d))
        rope.fillTable(s.ropeTable.pointer, position: position)
        s.lap(.output)
        if let store, store.options.prefetch {  // layer 0's, from the embedding
            predictExperts(after: -1, state: s)
            s.lap(.router)
        }

        for (l, layer) in weights.layers.enumerated() {
            RMSNorm.apply(x, h, count: d, weight: layer.attentionNorm.pointer, epsilon: c.rmsEpsilon)
            attention(layer: layer, index: l, input: h, position: position, state: s)
            layer.output.apply(s.attention.pointer, s.ffnOut.pointer, buffer: s.input, pool: s.pool)
            for i in 0..<d { x[i] += s.ffnOut.pointer[i] }
            s.lap(.attention)

            RMSNorm.apply(x, h, count: d, weight: layer.ffnNorm.pointer, epsilon: c.rmsEpsilon)
            try feedForward(layer.feedForward, layer: l, input: h, output: s.ffnOut.pointer, state: s)
            for i in 0..<d { x[i] += s.ffnOut.pointer[i] }
            s.lap(.experts)
        }

        guard let logits else { return }
        RMSNorm.apply(x, h, count: d, weight: weights.outputNorm.pointer, epsilon: c.rmsEpsilon)
        weights.output.apply(h, logits, buffer: s.input, pool: s.pool)
        s.lap(.output)
    }

    /// Computes up to three matrices that read the same input in one parallel loop over row
    /// chunks, without allocating. Matrices without a kernel are computed on the calling thread
    /// (they share one scratch row).
    private func project(_ x: UnsafePointer<Float>, _ a: Linear, _ ya: UnsafeMutablePointer<Float>,
                         _ b: Linear, _ yb: UnsafeMutablePointer<Float>,
                         _ c: Linear? = nil, _ yc: UnsafeMutablePointer<Float>? = nil, state s: ForwardState) {
        s.input.prepare(x, count: a.inputs, for: a.format)
        if b.format != a.format { s.input.prepare(x, count: b.inputs, for: b.format) }
        if let c, c.format != a.format, c.format != b.format { s.input.prepare(x, count: c.inputs, for: c.format) }
        if a.format == .dequantizeRows || b.format == .dequantizeRows || c?.format == .dequantizeRows {
            a.apply(rows: 0..<a.outputs, s.input, ya)
            b.apply(rows: 0..<b.outputs, s.input, yb)
            if let c, let yc { c.apply(rows: 0..<c.outputs, s.input, yc) }
            return
        }
        let threads = s.pool.threads, matrices = c == nil ? 2 : 3
        let na = Linear.chunkCount(rows: a.outputs, threads: threads, matrices: matrices)
        let nb = Linear.chunkCount(rows: b.outputs, threads: threads, matrices: matrices)
        let nc = c.map { Linear.chunkCount(rows: $0.outputs, threads: threads, matrices: matrices) } ?? 0
        s.pool.parallelFor(na + nb + nc) { task in
            if task < na {
                a.apply(rows: Linear.chunk(task, of: na, rows: a.outputs), s.input, ya)
            } else if task < na + nb {
                b.apply(rows: Linear.chunk(task - na, of: nb, rows: b.outputs), s.input, yb)
            } else if let c, let yc {
                c.apply(rows: Linear.chunk(task - na - nb, of: nc, rows: c.outputs), s.input, yc)
            }
        }
    }

    /// Q/K/V projections, q/k norms, RoPE, the cache append, and grouped-query attention over
    /// positions 0...position; the result lands in `state.attention`.
    private func attention(layer: LayerWeights, index l: Int, input h: UnsafePointer<Float>, position: Int, state s: ForwardState) {
        let q = s.q.pointer, k = s.k.pointer, v = s.v.pointer
        project(h, layer.q, q, layer.k, k, layer.v, v, state: s)
        attend(layer: layer, index: l, q: q, k: k, v: v, position: position, rope: s.ropeTable.pointer, cache: s, state: s)
    }

    /// Attention after the projections: biases, q/k norms and RoPE (the angles in `rope`, from
    /// `RoPE.fillTable` for `position`) applied to `q`, `k`, `v` in place, k and v appended to
    /// `cache`'s KV cache at `position`, and grouped-query attention over positions 0...position
    /// into `state.attention` (scratch and threads from `state`).
    func attend(layer: LayerWeights, index l: Int, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
                v: UnsafeMutablePointer<Float>, position: Int, rope table: UnsafePointer<Float>, cache: ForwardState, state s: ForwardState) {
        prepareAttention(layer: layer, index: l, q: q, k: k, v: v, position: position, rope: table, cache: cache)
        let context = cache.contextLength, scores = s.scores(context: context)
        s.pool.parallelFor(config.heads) { head in
            attendHead(head, index: l, q: q, position: position, cache: cache, out: s.attention.pointer,
                       scores: scores + head * context, qHalf: s.qHalf + head * config.headDimension)
        }
    }

    /// The serial part of one token's attention: biases, q/k norms and RoPE (the angles in `rope`,
    /// from `RoPE.fillTable` for `position`) applied to `q`, `k`, `v` in place, and k and v
    /// appended to `cache`'s KV cache at `position`.
    func prepareAttention(layer: LayerWeights, index l: Int, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
                          v: UnsafeMutablePointer<Float>, position: Int, rope table: UnsafePointer<Float>, cache: ForwardState) {
        let c = config
        let hd = c.headDimension, vd = c.valueDimension
        if let b = layer.qBias { for i in 0..<b.count { q[i] += b.pointer[i] } }
        if let b = layer.kBias { for i in 0..<b.count { k[i] += b.pointer[i] } }
        if let b = layer.vBias { for i in 0..<b.count { v[i] += b.pointer[i] } }
        switch spec.qkNorm {
        case .none: break
        case .perHead:
            for head in 0..<c.heads { RMSNorm.apply(q + head * hd, q + head * hd, count: hd, weight: layer.qNorm!.pointer, epsilon: c.rmsEpsilon) }
            for head in 0..<c.kvHeads { RMSNorm.apply(k + head * hd, k + head * hd, count: hd, weight: layer.kNorm!.pointer, epsilon: c.rmsEpsilon) }
        case .wholeProjection:
            RMSNorm.apply(q, q, count: c.heads * hd, weight: layer.qNorm!.pointer, epsilon: c.rmsEpsilon)
            RMSNorm.apply(k, k, count: c.kvHeads * hd, weight: layer.kNorm!.pointer, epsilon: c.rmsEpsilon)
        }
        rope.apply(q, heads: c.heads, headSize: hd, table: table)
        rope.apply(k, heads: c.kvHeads, headSize: hd, table: table)
        let layerKeys = cache.keys(layer: l), layerValues = cache.values(layer: l)
        for j in 0..<c.kvHeads {
            moek_f32_to_f16(k + j * hd, layerKeys + (j * cache.contextLength + position) * hd, hd)
            moek_f32_to_f16(v + j * vd, layerValues + (j * cache.contextLength + position) * vd, vd)
        }
    }

    /// Query head `head` of one prepared token (`q`, at `position` in `cache`) over positions
    /// 0...position of layer `l`'s cache: its values land at `out + head * valueDimension`.
    /// `scores` needs position + 1 floats, `qHalf` headDimension halves, both the head's own.
    func attendHead(_ head: Int, index l: Int, q: UnsafePointer<Float>, position: Int, cache: ForwardState,
                    out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, qHalf: UnsafeMutablePointer<UInt16>) {
        let c = config, hd = c.headDimension, vd = c.valueDimension
        Attention.attend(q: q, heads: c.heads, kvHeads: c.kvHeads, headSize: hd, valueSize: vd,
                         keys: cache.keys(layer: l), values: cache.values(layer: l),
                         capacity: cache.contextLength, length: position + 1, scale: 1 / Float(hd).squareRoot(),
                         out: out, scores: scores, qHalf: qHalf, only: head..<(head + 1))
    }

    /// The feed-forward block: routed experts (plus a shared expert) or a dense SwiGLU.
    private func feedForward(_ weights: FeedForwardWeights, layer: Int, input h: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, state s: ForwardState) throws(MoEError) {
        switch weights {
        case .dense(let gate, let up, let down):
            swiGLU(gate: gate, up: up, down: down, input: h, output: output, state: s)
        case .experts(let routerWeights, let gates, let ups, let downs, let shared):
            let k = config.expertsUsed
            s.lap(.experts)  // the FFN norm
            route(h, with: routerWeights, layer: layer, ids: s.expertIds, weights: s.expertWeights.pointer, owner: s, state: s)
            s.lap(.router)
            if s.recordRouting {
                for j in 0..<k {
                    s.routingLog.append(s.expertIds[j])
                    s.routingWeightLog.append(s.expertWeights.pointer[j])
                }
            }
            try routedExperts(gates: gates, ups: ups, downs: downs, shared: shared, layer: layer, k: k, input: h, output: output, state: s)
        }
    }

    /// The router's `k` experts for the FFN input `h` (ids and weights as the architecture
    /// normalises them), counted in `owner`'s expert counts (scratch and threads from `state`).
    func route(_ h: UnsafePointer<Float>, with routerWeights: Linear, layer: Int, ids: UnsafeMutablePointer<Int32>,
               weights: UnsafeMutablePointer<Float>, owner: ForwardState, state s: ForwardState) {
        let logits = s.routerLogits.pointer
        routerWeights.apply(h, logits, buffer: s.input, pool: s.pool)
        choose(from: logits, layer: layer, ids: ids, weights: weights, owner: owner)
    }

    /// The top-k experts and their weights from one token's router `logits` (gated in place),
    /// counted in `owner`'s per-layer expert counts.
    func choose(from logits: UnsafeMutablePointer<Float>, layer: Int, ids: UnsafeMutablePointer<Int32>,
                weights: UnsafeMutablePointer<Float>, owner: ForwardState) {
        let k = config.expertsUsed
        router.gate(UnsafeMutableBufferPointer(start: logits, count: config.experts))
        router.topK(UnsafeBufferPointer(start: logits, count: config.experts), k: k, ids: ids, weights: weights)
        let counts = owner.expertCounts + layer * config.experts
        for j in 0..<k { counts[Int(ids[j])] &+= 1 }
    }

    /// `output[i] += sigmoid(gateInput · h) * sharedOut[i]`: a shared expert's SwiGLU output
    /// `sharedOut`, added after the routed experts' sum.
    func addShared(_ shared: SharedExpertWeights, input h: UnsafePointer<Float>, sharedOut: UnsafePointer<Float>,
                   output: UnsafeMutablePointer<Float>) {
        let d = config.embedding
        var g: Float = 0
        for i in 0..<d { g += shared.gateInput.pointer[i] * h[i] }
        let sigmoid = 1 / (1 + expf(-g))
        for i in 0..<d { output[i] += sigmoid * sharedOut[i] }
    }

    /// The chosen experts (and the shared expert, as one more task set in the same parallel
    /// loops): gate and up rows of every expert in one loop, SiLU, then the down rows; each
    /// expert's output lands in its own row of `expertOut` and the rows are summed in rank order,
    /// then the shared expert's output is added. With an expert store, the experts already
    /// resident (and the shared expert) run first and the rest as their reads complete, while the
    /// next layer's predicted experts are read ahead.
    private func routedExperts(gates: ExpertLinear, ups: ExpertLinear, downs: ExpertLinear, shared: SharedExpertWeights?,
                               layer: Int, k: Int, input h: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               state s: ForwardState) throws(MoEError) {
        let ids = s.expertIds, weights = s.expertWeights.pointer
        s.timings.expertsRun += k
        let gateFormat = Linear.format(for: gates.type), upFormat = Linear.format(for: ups.type)
        s.input.prepare(h, count: gates.inputs, for: gateFormat)
        if upFormat != gateFormat { s.input.prepare(h, count: ups.inputs, for: upFormat) }
        if let shared {  // any format the routed matrices did not need
            let sg = shared.gate.format, su = shared.up.format
            if sg != gateFormat && sg != upFormat { s.input.prepare(h, count: shared.gate.inputs, for: sg) }
            if su != gateFormat && su != upFormat && su != sg { s.input.prepare(h, count: shared.up.inputs, for: su) }
        }
        // Index k is the shared expert; it joins the first set of experts that runs.
        var sharedPending = shared != nil
        func matrices(_ j: Int, _ routed: (Int) -> (gate: Linear, up: Linear, down: Linear)) -> (gate: Linear, up: Linear, down: Linear) {
            if j == k, let shared { return (shared.gate, shared.up, shared.down) }
            return routed(j)
        }
        if let store {
            let predicted = s.predictedLayer == layer
            store.noteRouting(layer: layer, ids: ids, count: k)
            store.acquire(layer: layer, ids: ids, count: k, slots: s.expertSlots,
                          predicted: predicted ? UnsafePointer(s.predictedIds) : nil, predictedCount: predicted ? k : 0)
            s.predictedLayer = -1
            if store.options.prefetch {
                s.lap(.experts)
                predictExperts(after: layer, state: s)
                s.lap(.router)
            }
            try store.runAsReady(layer: layer, slots: s.expertSlots, count: k, pending: s.pending, ready: s.ready, waited: &s.storeWaiting) {
                var m = 0
                for j in 0..<k where s.ready[j] {
                    s.batch[m] = j
                    s.ready[j] = false
                    m += 1
                }
                if sharedPending {
                    s.batch[m] = k
                    m += 1
                    sharedPending = false
                }
                runExperts(m, indices: s.batch, state: s) { j in
                    matrices(j) { store.matrices(slot: s.expertSlots[$0], layer: layer, expert: Int(ids[$0])) }
                }
            }
        } else {
            let count = shared == nil ? k : k + 1
            for j in 0..<count { s.batch[j] = j }
            runExperts(count, indices: s.batch, state: s) { j in
                matrices(j) { j in
                    let e = Int(ids[j])
                    return (gates.expert(e), ups.expert(e), downs.expert(e))
                }
            }
        }
        combineRanks(tokens: 1, k: k, weights: weights, experts: s.expertOut.pointer, into: output, rows: downs.outputs, pool: s.pool)
        if let shared { addShared(shared, input: h, sharedOut: s.expertOut.pointer + k * downs.outputs, output: output) }
    }

    /// Sums each token's expert outputs in rank order: `into[t][r] = Σ_j weights[t][j] * experts[t][j][r]`
    /// for `tokens` tokens of `rows` outputs (the same order whichever expert finished first).
    func combineRanks(tokens: Int, k: Int, weights: UnsafePointer<Float>, experts: UnsafePointer<Float>,
                      into output: UnsafeMutablePointer<Float>, rows d: Int, pool: ThreadPool) {
        let outChunks = Linear.chunkCount(rows: d, threads: pool.threads)
        pool.parallelFor(tokens * outChunks) { task in
            let t = task / outChunks
            let rows = Linear.chunk(task % outChunks, of: outChunks, rows: d)
            let o = output + t * d, w = weights + t * k
            for r in rows { o[r] = 0 }
            for j in 0..<k {
                let y = experts + (t * k + j) * d, wj = w[j]
                for r in rows { o[r] += wj * y[r] }
            }
        }
    }

    /// Gate and up, SiLU, and the down projection of one token's expert slots `indices[0..<count]`
    /// (slot j < k: rank j; slot k: the shared expert), all reading `s.input`, with the matrices
    /// `matrices(i)`: slot i's gate and up rows go to `s.gate`/`s.up + i * hiddenSize`, its down
    /// projection's input to `s.hidden[i]`, its output to `s.expertOut + i * embedding`.
    private func runExperts(_ count: Int, indices: UnsafePointer<Int>, state s: ForwardState,
                            matrices: (Int) -> (gate: Linear, up: Linear, down: Linear)) {
        guard count > 0 else { return }
        let pool = s.pool, stride = s.hiddenSize, d = config.embedding
        let g = s.gate.pointer, u = s.up.pointer, out = s.expertOut.pointer
        // Index by index, as the matrices may differ in size and type (a shared expert among them).
        var serial = false
        for t in 0..<count {
            let m = matrices(indices[t])
            if m.gate.format == .dequantizeRows || m.up.format == .dequantizeRows || m.down.format == .dequantizeRows { serial = true }
        }
        let chunks = serial ? 1 : Linear.chunkCount(rows: config.expertFeedForward, threads: pool.threads, matrices: 2 * count)
        func run(_ n: Int, _ body: (Int) -> Void) {
            if serial { for i in 0..<n { body(i) } } else { pool.parallelFor(n, body) }
        }
        run(count * 2 * chunks) { task in
            let i = indices[task / (2 * chunks)], rest = task % (2 * chunks)
            let m = matrices(i)
            let rows = Linear.chunk(rest % chunks, of: chunks, rows: m.gate.outputs)
            if rest < chunks {
                m.gate.apply(rows: rows, s.input, g + i * stride)
            } else {
                m.up.apply(rows: rows, s.input, u + i * stride)
            }
        }
        run(count) { task in  // SiLU and the down projection's activation, one expert per task
            let i = indices[task]
            let m = matrices(i), f = m.gate.outputs
            let gs = g + i * stride, us = u + i * stride
            moek_swiglu(gs, us, f)
            s.hidden[i].prepare(gs, count: f, for: m.down.format)
        }
        let outChunks = serial ? 1 : Linear.chunkCount(rows: d, threads: pool.threads, matrices: count)
        run(count * outChunks) { task in
            let i = indices[task / outChunks]
            let rows = Linear.chunk(task % outChunks, of: outChunks, rows: d)
            matrices(i).down.apply(rows: rows, s.hidden[i], out + i * d)
        }
    }

    /// Guesses the experts of layer `layer + 1` by applying its norm and router to the residual
    /// stream as it is now (after `layer`'s attention; the embedding for layer 0), and asks the
    /// store to read them ahead while the rest of `layer` and the next attention compute.
    private func predictExperts(after layer: Int, state s: ForwardState) {
        let next = layer + 1
        guard next < weights.layers.count, let store,
              case .experts(let routerWeights, _, _, _, _) = weights.layers[next].feedForward else { return }
        let c = config
        RMSNorm.apply(s.x.pointer, s.predictInput.pointer, count: c.embedding, weight: weights.layers[next].ffnNorm.pointer, epsilon: c.rmsEpsilon)
        let buffer = s.hidden[0]  // free until the down projections run
        routerWeights.apply(s.predictInput.pointer, s.predictLogits.pointer, buffer: buffer, pool: s.pool)
        router.gate(UnsafeMutableBufferPointer(start: s.predictLogits.pointer, count: c.experts))
        router.topK(UnsafeBufferPointer(start: s.predictLogits.pointer, count: c.experts), k: c.expertsUsed,
                    ids: s.predictedIds, weights: s.predictedWeights.pointer)
        store.prefetch(layer: next, ids: s.predictedIds, count: c.expertsUsed)
        s.predictedLayer = next
    }

    /// `down(silu(gate x) * up x)`, with gate and up in one parallel loop.
    private func swiGLU(gate: Linear, up: Linear, down: Linear, input h: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, state s: ForwardState) {
        let g = s.gate.pointer, u = s.up.pointer
        project(h, gate, g, up, u, state: s)
        moek_swiglu(g, u, gate.outputs)
        down.apply(g, output, buffer: s.hidden[0], pool: s.pool)
    }
}
