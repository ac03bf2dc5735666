import MoEKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffers for evaluating a batch of tokens layer by layer: each token's residual stream, block
/// input, projections and routing, each (token, rank) pair's expert activations and output, and
/// the converted activation rows the matrix-matrix kernels read. Allocated per session for
/// `capacity` tokens on the first batch, again (larger) when a longer step comes.
final class BatchBuffers {
    /// The most tokens these buffers hold.
    let capacity: Int
    let xs, hs, weights, out, gate, up, ffnOut, q, k, v, attention: FloatStorage
    /// Each token's router logits (`experts` floats a token), computed for all tokens at once.
    let routerLogits: FloatStorage
    /// Each token's RoPE angles (`RoPE.fillTable`, `ropeDimensions` floats a token), and the
    /// position they were filled for (-1: none), so a step fills them once for all its layers.
    let ropeTables: FloatStorage
    let ropePositions: UnsafeMutablePointer<Int>
    let ids: UnsafeMutablePointer<Int32>
    /// Where each token's rows start in its owner's routing log (when it records).
    let logBase: UnsafeMutablePointer<Int>
    /// Each token's block input (attention, output projection, FFN), converted.
    let tokenRows: ActivationBatch
    /// Each (token, rank) pair's SiLU output (or each token's, for dense FFNs), converted for the
    /// down projection.
    let hiddenRows: ActivationBatch
    /// Pairs `t * k + j` grouped by expert: `pairs[start[e] ..< start[e + 1]]` chose expert e;
    /// `pairTokens` holds each sorted pair's token, `pairs32` the pair as Int32 (kernel indices).
    let pairs: UnsafeMutablePointer<Int>
    let pairs32: UnsafeMutablePointer<Int32>
    let pairTokens: UnsafeMutablePointer<Int32>
    let start: UnsafeMutablePointer<Int>
    let cursor: UnsafeMutablePointer<Int>
    /// The distinct experts of the current layer, and the store slot of each (by expert id).
    let distinct: UnsafeMutablePointer<Int32>
    let slotOf: UnsafeMutablePointer<Int32>
    let waveSlots: UnsafeMutablePointer<Int32>
    let pending, ready: UnsafeMutablePointer<Bool>
    /// The experts being computed now, and their pairs.
    let taskExperts: UnsafeMutablePointer<Int32>
    let taskPairs: UnsafeMutablePointer<Int>

    init(capacity: Int, config c: ModelConfig, hiddenSize: Int, widest: Int) {
        self.capacity = capacity
        let d = c.embedding, e = max(c.experts, 1), n = capacity * max(c.expertsUsed, 1)
        xs = FloatStorage(zeros: capacity * d)
        hs = FloatStorage(zeros: capacity * d)
        ffnOut = FloatStorage(zeros: capacity * d)
        q = FloatStorage(zeros: capacity * c.heads * c.headDimension)
        k = FloatStorage(zeros: capacity * c.kvHeads * c.headDimension)
        v = FloatStorage(zeros: capacity * c.kvHeads * c.valueDimension)
        attention = FloatStorage(zeros: capacity * c.heads * c.valueDimension)
        weights = FloatStorage(zeros: n)
        routerLogits = FloatStorage(zeros: capacity * e)
        ropeTables = FloatStorage(zeros: capacity * c.ropeDimensions)
        ropePositions = .allocate(capacity: capacity)
        ropePositions.initialize(repeating: -1, count: capacity)
        out = FloatStorage(zeros: n * d)
        gate = FloatStorage(zeros: n * hiddenSize)
        up = FloatStorage(zeros: n * hiddenSize)
        ids = .allocate(capacity: n)
        ids.initialize(repeating: 0, count: n)
        logBase = .allocate(capacity: capacity)
        logBase.initialize(repeating: 0, count: capacity)
        tokenRows = ActivationBatch(rows: capacity, width: widest)
        hiddenRows = ActivationBatch(rows: n, width: hiddenSize)
        pairs = .allocate(capacity: n)
        pairs32 = .allocate(capacity: n)
        pairTokens = .allocate(capacity: n)
        start = .allocate(capacity: e + 1)
        cursor = .allocate(capacity: e)
        distinct = .allocate(capacity: e)
        slotOf = .allocate(capacity: e)
        waveSlots = .allocate(capacity: e)
        pending = .allocate(capacity: e)
        ready = .allocate(capacity: e)
        taskExperts = .allocate(capacity: e)
        taskPairs = .allocate(capacity: n)
    }

    deinit {
        ids.deallocate()
        ropePositions.deallocate()
        logBase.deallocate()
        pairs.deallocate()
        pairs32.deallocate()
        pairTokens.deallocate()
        start.deallocate()
        cursor.deallocate()
        distinct.deallocate()
        slotOf.deallocate()
        waveSlots.deallocate()
        pending.deallocate()
        ready.deallocate()
        taskExperts.deallocate()
        taskPairs.deallocate()
    }
}

extension Model {
    /// The most sessions `Session.evaluate(together:tokens:)` takes.
    public static let batchCapacity = 64

    /// The most prompt tokens one batched step evaluates; longer prompts go in steps of this size.
    /// Larger steps read each expert once for more tokens and unpack each weight segment once for
    /// more tiles; the step's buffers grow with it (about 190 KiB per token for OLMoE-1B-7B, so
    /// 48 MiB at 256), allocated for the longest step a session has run. olmoe pp512, 2 threads,
    /// Zen 5, medians of 5: Q8_0 125.3 t/s in steps of 64, 134.3 in steps of 256; Q4_K_M 131.8 /
    /// 139.7; 512 was no faster than 256.
    public static let promptStep = 256

    /// Runs `tokens` (at positions `position`, `position + 1`, ...) through every layer, layer by
    /// layer. Each weight matrix is applied to the whole batch at once with the matrix-matrix
    /// kernels (the Q/K/V and output projections, dense FFNs, and each routed expert for the tokens
    /// that chose it), so its weights are read once per batch; attention appends every token's keys
    /// and values, then runs head by head over the tokens, each seeing the positions up to its own.
    /// With an expert store, experts are taken in waves of at most half the slots, the resident
    /// ones first, each distinct expert acquired (and read) at most once per batch. Every token
    /// gets bit for bit the result of `forward(token:)`.
    /// `logits(t)` says where token t's logits go (nil: not needed).
    func forward(batch tokens: UnsafeBufferPointer<Int32>, position: Int, state s: ForwardState,
                 logits: (Int) -> UnsafeMutablePointer<Float>?) throws(MoEError) {
        try forward(batch: tokens, positions: { position + $0 }, owners: { _ in s }, state: s, logits: logits)
    }

    /// The batched forward pass for tokens that may belong to different sequences: token t sits at
    /// `positions(t)` in the KV cache of `owners(t)`, whose expert counts and routing log it also
    /// updates. Scratch, threads and timings come from `state`. A sequence's tokens must appear
    /// in position order; each token attends to its own sequence's cache only.
    func forward(batch tokens: UnsafeBufferPointer<Int32>, positions: (Int) -> Int, owners: (Int) -> ForwardState,
                 state s: ForwardState, logits: (Int) -> UnsafeMutablePointer<Float>?) throws(MoEError) {
        let count = tokens.count
        precondition(count <= s.batchCapacity)
        let b = s.batchBuffers(model: self, tokens: count)
        s.startLaps()
        s.timings.tokens += count
        s.timings.steps += 1
        embed(tokens, buffers: b, owners: owners, state: s)
        for l in weights.layers.indices {
            attentionBlock(layer: l, tokens: count, buffers: b, positions: positions, owners: owners, state: s)
            try feedForwardBlock(layer: l, tokens: count, buffers: b, owners: owners, state: s)
        }
        outputBlock(tokens: count, buffers: b, state: s, logits: logits)
    }

    /// The batched forward pass for one token from each of several sequences (a decode step of a
    /// batch), in two halves pipelined half a layer apart: while the first half runs the expert
    /// FFNs of layer l, the second runs the attention of layer l, then the first the attention of
    /// layer l + 1 while the second runs the FFNs of layer l (`ThreadPool.together`: a chain per
    /// half, each thread that waits on its own half's loop helping the other's). One half's
    /// serial steps (norms, routing, attention per token) and stragglers are thus filled with the
    /// other half's work. Each half reads its own experts, so an expert both halves chose is read
    /// twice. Every token gets bit for bit what `forward(batch:)` gives it. Needs at least two
    /// tokens and no expert store (`canOverlap`); the second half's scratch, threads and timings
    /// are `state.laneState`, whose timings are added to `state`'s, with the time the halves ran
    /// at once as `overlapped`.
    func forward(overlapping tokens: UnsafeBufferPointer<Int32>, positions: (Int) -> Int, owners: (Int) -> ForwardState,
                 state s: ForwardState, logits: (Int) -> UnsafeMutablePointer<Float>?) throws(MoEError) {
        let count = tokens.count, first = count - count / 2, second = count / 2
        precondition(count <= s.batchCapacity && second >= 1 && canOverlap)
        let lane = s.laneState(model: self)
        let a = s.batchBuffers(model: self, tokens: first), b = lane.batchBuffers(model: self, tokens: second)
        let began = moek_monotonic_ns(), phasesBefore = s.timings.total
        func positionsB(_ t: Int) -> Int { positions(first + t) }
        func ownersB(_ t: Int) -> ForwardState { owners(first + t) }
        s.startLaps()
        s.timings.tokens += count
        s.timings.steps += 2  // each half reads every layer's weights
        embed(UnsafeBufferPointer(rebasing: tokens[..<first]), buffers: a, owners: owners, state: s)
        lane.startLaps()
        embed(UnsafeBufferPointer(rebasing: tokens[first...]), buffers: b, owners: ownersB, state: lane)
        s.startLaps()
        attentionBlock(layer: 0, tokens: first, buffers: a, positions: positions, owners: owners, state: s)
        let layers = weights.layers.count
        for l in 0..<layers {
            var failure: MoEError?, laneFailure: MoEError?
            s.pool.together({
                s.startLaps()
                do throws(MoEError) {
                    try feedForwardBlock(layer: l, tokens: first, buffers: a, owners: owners, state: s)
                } catch { failure = error }
            }, {
                lane.startLaps()
                attentionBlock(layer: l, tokens: second, buffers: b, positions: positionsB, owners: ownersB, state: lane)
            })
            s.pool.together({
                s.startLaps()
                if l + 1 < layers {
                    attentionBlock(layer: l + 1, tokens: first, buffers: a, positions: positions, owners: owners, state: s)
                } else {
                    outputBlock(tokens: first, buffers: a, state: s, logits: logits)
                }
            }, {
                lane.startLaps()
                do throws(MoEError) {
                    try feedForwardBlock(layer: l, tokens: second, buffers: b, owners: ownersB, state: lane)
                } catch { laneFailure = error }
            })
            if let error = failure ?? laneFailure { throw error }
        }
        s.startLaps()
        outputBlock(tokens: second, buffers: b, state: s, logits: { logits(first + $0) })
        // The second half's phases count as this session's; the halves' thread time beyond the
        // wall time is the overlap.
        let laneTimings = lane.currentTimings
        lane.resetTimings()
        let wall = moek_monotonic_ns() &- began
        let phases = (s.timings.total &- phasesBefore) &+ laneTimings.total
        s.timings.add(laneTimings)
        s.timings.overlapped &+= phases > wall ? phases &- wall : 0
    }

    /// Whether `forward(overlapping:)` can run: routed experts are all mapped (no expert store,
    /// whose waves assume one batch at a time).
    var canOverlap: Bool { store == nil }

    /// Each token's embedding into its row of `xs`; recording owners get room in their routing
    /// logs (per token, per layer, k ids), in token order.
    private func embed(_ tokens: UnsafeBufferPointer<Int32>, buffers b: BatchBuffers, owners: (Int) -> ForwardState,
                       state s: ForwardState) {
        let c = config, d = c.embedding, k = c.expertsUsed
        for t in 0..<tokens.count {
            _ = try? weights.embedding.dequantizeRow(Int(tokens[t]), into: UnsafeMutableBufferPointer(start: b.xs.pointer + t * d, count: d))
            let owner = owners(t)
            if owner.recordRouting && c.isMoE {
                b.logBase[t] = owner.routingLog.count
                owner.routingLog.append(contentsOf: repeatElement(0, count: c.layers * k))
                owner.routingWeightLog.append(contentsOf: repeatElement(0, count: c.layers * k))
            }
        }
        s.predictedLayer = -1
        s.lap(.output)
    }

    /// Layer `l`'s attention block for the batch: norm, Q/K/V for all tokens at once, every token's
    /// keys and values into its owner's cache, attention in one loop over heads (each head taking
    /// the tokens in turn), the output projection and the residual.
    private func attentionBlock(layer l: Int, tokens count: Int, buffers b: BatchBuffers, positions: (Int) -> Int,
                                owners: (Int) -> ForwardState, state s: ForwardState) {
        let c = config, d = c.embedding, layer = weights.layers[l]
        let qd = c.heads * c.headDimension, kvk = c.kvHeads * c.headDimension, kvv = c.kvHeads * c.valueDimension
        let ad = c.heads * c.valueDimension, rd = c.ropeDimensions
        // The per-token parts between the matrix products (norms, RoPE, cache stores, residuals)
        // run as one task per token, not on the calling thread alone while the others wait.
        s.pool.parallelFor(count) { t in
            RMSNorm.apply(b.xs.pointer + t * d, b.hs.pointer + t * d, count: d, weight: layer.attentionNorm.pointer, epsilon: c.rmsEpsilon)
        }
        projectBatch(b.hs.pointer, stride: d, tokens: count, rows: b.tokenRows, pool: s.pool,
                     layer.q, b.q.pointer, qd, layer.k, b.k.pointer, kvk, layer.v, b.v.pointer, kvv)
        // Every token's keys and values into its cache first (a token only reads positions up to
        // its own), then one loop over heads, each taking the tokens in turn: one loop per layer
        // instead of one per token, and a head's cached keys stay warm from token to token.
        // Tokens write different positions (or different caches), so they go in parallel.
        s.pool.parallelFor(count) { t in
            let table = b.ropeTables.pointer + t * rd, position = positions(t)
            if b.ropePositions[t] != position {
                rope.fillTable(table, position: position)
                b.ropePositions[t] = position
            }
            prepareAttention(layer: layer, index: l, q: b.q.pointer + t * qd, k: b.k.pointer + t * kvk, v: b.v.pointer + t * kvv,
                             position: position, rope: table, cache: owners(t))
        }
        var widest = 0
        for t in 0..<count { widest = max(widest, owners(t).contextLength) }
        let scores = s.scores(context: widest)
        s.pool.parallelFor(c.heads) { head in
            for t in 0..<count {
                attendHead(head, index: l, q: b.q.pointer + t * qd, position: positions(t), cache: owners(t),
                           out: b.attention.pointer + t * ad, scores: scores + head * widest, qHalf: s.qHalf + head * c.headDimension)
            }
        }
        projectBatch(b.attention.pointer, stride: ad, tokens: count, rows: b.tokenRows, pool: s.pool,
                     layer.output, b.ffnOut.pointer, d)
        s.pool.parallelFor(count) { t in
            let xt = b.xs.pointer + t * d, o = b.ffnOut.pointer + t * d
            for i in 0..<d { xt[i] += o[i] }
        }
        s.lap(.attention)
    }

    /// Layer `l`'s feed-forward block for the batch: norm, then a dense SwiGLU, or routing (each
    /// token's choice logged in its owner) and the routed experts grouped by expert, summed per
    /// token in rank order, plus the shared expert; then the residual.
    private func feedForwardBlock(layer l: Int, tokens count: Int, buffers b: BatchBuffers, owners: (Int) -> ForwardState,
                                  state s: ForwardState) throws(MoEError) {
        let c = config, d = c.embedding, k = c.expertsUsed, layer = weights.layers[l]
        s.pool.parallelFor(count) { t in
            RMSNorm.apply(b.xs.pointer + t * d, b.hs.pointer + t * d, count: d, weight: layer.ffnNorm.pointer, epsilon: c.rmsEpsilon)
        }
        switch layer.feedForward {
        case .dense(let gate, let up, let down):
            swiGLUBatch(gate: gate, up: up, down: down, tokens: count, output: b.ffnOut.pointer, buffers: b, state: s)
            s.pool.parallelFor(count) { t in
                let xt = b.xs.pointer + t * d, o = b.ffnOut.pointer + t * d
                for i in 0..<d { xt[i] += o[i] }
            }
            s.lap(.experts)
        case .experts(let routerWeights, let gates, let ups, let downs, let shared):
            s.lap(.experts)
            // Every token's logits in one matrix-matrix product (the same bits as one per token).
            let e = config.experts, logits = b.routerLogits.pointer
            projectBatch(b.hs.pointer, stride: d, tokens: count, rows: b.tokenRows, pool: s.pool, routerWeights, logits, e)
            for t in 0..<count {
                let ids = b.ids + t * k, w = b.weights.pointer + t * k, owner = owners(t)
                choose(from: logits + t * e, layer: l, ids: ids, weights: w, owner: owner)
                if owner.recordRouting {
                    let at = b.logBase[t] + l * k
                    for j in 0..<k {
                        owner.routingLog[at + j] = ids[j]
                        owner.routingWeightLog[at + j] = w[j]
                    }
                }
                store?.noteRouting(layer: l, ids: ids, count: k)
            }
            s.lap(.router)
            try batchedExperts(gates: gates, ups: ups, downs: downs, layer: l, count: count, buffers: b, state: s)

            // Each token's experts in rank order (as forward(token:) sums them), the shared
            // expert, and the residual.
            let ffn = b.ffnOut.pointer
            combineRanks(tokens: count, k: k, weights: b.weights.pointer, experts: b.out.pointer, into: ffn, rows: d, pool: s.pool)
            if let shared {  // for all tokens at once, into the now free expert outputs
                swiGLUBatch(gate: shared.gate, up: shared.up, down: shared.down, tokens: count, output: b.out.pointer, buffers: b, state: s)
            }
            s.pool.parallelFor(count) { t in
                let o = ffn + t * d, xt = b.xs.pointer + t * d
                if let shared { addShared(shared, input: b.hs.pointer + t * d, sharedOut: b.out.pointer + t * d, output: o) }
                for i in 0..<d { xt[i] += o[i] }
            }
            s.lap(.experts)
        }
    }

    /// The final norm and vocabulary logits of every token whose `logits(t)` is not nil.
    /// The final norm and vocabulary projection of the tokens that want logits. When several do
    /// and their targets lie `vocabulary` floats apart in token order (every caller's: a prompt's
    /// `.all`, a batch of sessions), the output matrix is read once for all of them through the
    /// matrix-matrix kernels; otherwise token by token. Either way bit for bit the same logits.
    private func outputBlock(tokens count: Int, buffers b: BatchBuffers, state s: ForwardState,
                             logits: (Int) -> UnsafeMutablePointer<Float>?) {
        let d = config.embedding, vocabulary = config.vocabulary, output = weights.output
        var wanted = 0, strided = output.outputs <= vocabulary
        var first: UnsafeMutablePointer<Float>? = nil
        for t in 0..<count {
            guard let target = logits(t) else { continue }
            if let first { strided = strided && target == first + wanted * vocabulary } else { first = target }
            wanted += 1
        }
        if wanted > 1, strided, let first {
            var j = 0
            for t in 0..<count where logits(t) != nil {
                RMSNorm.apply(b.xs.pointer + t * d, b.hs.pointer + j * d, count: d, weight: weights.outputNorm.pointer, epsilon: config.rmsEpsilon)
                j += 1
            }
            projectBatch(b.hs.pointer, stride: d, tokens: wanted, rows: b.tokenRows, pool: s.pool, output, first, vocabulary)
        } else {
            let h = s.h.pointer
            for t in 0..<count {
                guard let target = logits(t) else { continue }
                RMSNorm.apply(b.xs.pointer + t * d, h, count: d, weight: weights.outputNorm.pointer, epsilon: config.rmsEpsilon)
                output.apply(h, target, buffer: s.input, pool: s.pool)
            }
        }
        s.lap(.output)
    }

    /// Up to three matrices that read the same `tokens` input rows (`x + t * stride`), each applied
    /// to all of them with the matrix-matrix kernels, in one parallel loop over row chunks; matrix
    /// m's output for token t lands at `y_m + t * ys_m`. Inputs are converted once per format.
    func projectBatch(_ x: UnsafePointer<Float>, stride: Int, tokens: Int, rows act: ActivationBatch, pool: ThreadPool,
                      _ a: Linear, _ ya: UnsafeMutablePointer<Float>, _ sa: Int,
                      _ b: Linear? = nil, _ yb: UnsafeMutablePointer<Float>? = nil, _ sb: Int = 0,
                      _ c: Linear? = nil, _ yc: UnsafeMutablePointer<Float>? = nil, _ sc: Int = 0) {
        let fb = b?.format, fc = c?.format
        pool.parallelFor(tokens) { t in
            let xt = x + t * stride
            act.prepare(t, xt, count: a.inputs, for: a.format)
            if let b, let fb, fb != a.format { act.prepare(t, xt, count: b.inputs, for: fb) }
            if let c, let fc, fc != a.format, fc != fb { act.prepare(t, xt, count: c.inputs, for: fc) }
        }
        if a.format == .dequantizeRows || fb == .dequantizeRows || fc == .dequantizeRows {
            a.gemm(rows: 0..<a.outputs, act, tokens: tokens, xIndex: nil, ya, yStride: sa, yIndex: nil)
            if let b, let yb { b.gemm(rows: 0..<b.outputs, act, tokens: tokens, xIndex: nil, yb, yStride: sb, yIndex: nil) }
            if let c, let yc { c.gemm(rows: 0..<c.outputs, act, tokens: tokens, xIndex: nil, yc, yStride: sc, yIndex: nil) }
            return
        }
        let threads = pool.threads, matrices = 1 + (b == nil ? 0 : 1) + (c == nil ? 0 : 1)
        let na = Linear.chunkCount(rows: a.outputs, threads: threads, matrices: matrices)
        let nb = b.map { Linear.chunkCount(rows: $0.outputs, threads: threads, matrices: matrices) } ?? 0
        let nc = c.map { Linear.chunkCount(rows: $0.outputs, threads: threads, matrices: matrices) } ?? 0
        pool.parallelFor(na + nb + nc) { task in
            if task < na {
                a.gemm(rows: Linear.chunk(task, of: na, rows: a.outputs), act, tokens: tokens, xIndex: nil, ya, yStride: sa, yIndex: nil)
            } else if task < na + nb, let b, let yb {
                b.gemm(rows: Linear.chunk(task - na, of: nb, rows: b.outputs), act, tokens: tokens, xIndex: nil, yb, yStride: sb, yIndex: nil)
            } else if let c, let yc {
                c.gemm(rows: Linear.chunk(task - na - nb, of: nc, rows: c.outputs), act, tokens: tokens, xIndex: nil, yc, yStride: sc, yIndex: nil)
            }
        }
    }

    /// A SwiGLU (dense FFN or shared expert) for the whole batch:
    /// `output[t] = down(silu(gate hs[t]) * up hs[t])`, rows of `embedding` floats.
    private func swiGLUBatch(gate: Linear, up: Linear, down: Linear, tokens: Int, output: UnsafeMutablePointer<Float>,
                             buffers b: BatchBuffers, state s: ForwardState) {
        let stride = s.hiddenSize, f = gate.outputs
        projectBatch(b.hs.pointer, stride: config.embedding, tokens: tokens, rows: b.tokenRows, pool: s.pool,
                     gate, b.gate.pointer, stride, up, b.up.pointer, stride)
        s.pool.parallelFor(tokens) { t in
            let g = b.gate.pointer + t * stride, u = b.up.pointer + t * stride
            moek_swiglu(g, u, f)
        }
        projectBatch(b.gate.pointer, stride: stride, tokens: tokens, rows: b.hiddenRows, pool: s.pool,
                     down, output, config.embedding)
    }

    /// The routed experts of a batch at `layer`: (token, rank) pairs grouped by expert, each
    /// expert's matrices applied to all its tokens at once; with a store, in waves of acquired
    /// experts, ready ones first.
    private func batchedExperts(gates: ExpertLinear, ups: ExpertLinear, downs: ExpertLinear, layer: Int, count: Int,
                                buffers b: BatchBuffers, state s: ForwardState) throws(MoEError) {
        let k = config.expertsUsed, experts = config.experts
        // Each token's input, converted once for the gate and up matrices.
        let gateFormat = Linear.format(for: gates.type), upFormat = Linear.format(for: ups.type)
        s.pool.parallelFor(count) { t in
            let ht = b.hs.pointer + t * config.embedding
            b.tokenRows.prepare(t, ht, count: gates.inputs, for: gateFormat)
            if upFormat != gateFormat { b.tokenRows.prepare(t, ht, count: ups.inputs, for: upFormat) }
        }
        // Counting sort of the pairs by expert.
        for e in 0...experts { b.start[e] = 0 }
        for p in 0..<(count * k) { b.start[Int(b.ids[p]) + 1] += 1 }
        for e in 0..<experts { b.start[e + 1] += b.start[e] }
        b.cursor.update(from: b.start, count: experts)
        for p in 0..<(count * k) {
            let e = Int(b.ids[p]), q = b.cursor[e]
            b.pairs[q] = p
            b.pairs32[q] = Int32(p)
            b.pairTokens[q] = Int32(p / k)
            b.cursor[e] += 1
        }
        var distinctCount = 0
        for e in 0..<experts where b.start[e + 1] > b.start[e] {
            b.distinct[distinctCount] = Int32(e)
            distinctCount += 1
        }
        s.timings.expertsRun += distinctCount
        // Most tokens first: the tasks are handed out in this order, so the last ones, which
        // decide how long a thread waits for the other at the loop's end, are the shortest.
        func tokensOf(_ e: Int32) -> Int { b.start[Int(e) + 1] - b.start[Int(e)] }
        for i in 1..<max(1, distinctCount) {
            let e = b.distinct[i], n = tokensOf(e)
            var j = i
            while j > 0 && tokensOf(b.distinct[j - 1]) < n {
                b.distinct[j] = b.distinct[j - 1]
                j -= 1
            }
            b.distinct[j] = e
        }

        guard let store else {
            runExpertGroups(distinctCount, experts: b.distinct, gates: gates, ups: ups, downs: downs, buffers: b, state: s) { e in
                (gates.expert(e), ups.expert(e), downs.expert(e))
            }
            return
        }
        // Resident experts first, so the first wave is mostly hits; then waves of half the slots.
        store.orderResidentFirst(layer: layer, ids: b.distinct, count: distinctCount)
        let wave = max(k, min(distinctCount, store.slotCount / 2))
        var first = 0
        while first < distinctCount {
            let n = min(wave, distinctCount - first)
            let waveIds = b.distinct + first
            store.acquire(layer: layer, ids: waveIds, count: n, slots: b.waveSlots, predicted: nil, predictedCount: 0)
            for i in 0..<n { b.slotOf[Int(waveIds[i])] = b.waveSlots[i] }
            try store.runAsReady(layer: layer, slots: b.waveSlots, count: n, pending: b.pending, ready: b.ready, waited: &s.storeWaiting) {
                var m = 0
                for i in 0..<n where b.ready[i] {
                    b.ready[i] = false
                    b.taskExperts[m] = waveIds[i]
                    m += 1
                }
                runExpertGroups(m, experts: b.taskExperts, gates: gates, ups: ups, downs: downs, buffers: b, state: s) { e in
                    store.matrices(slot: b.slotOf[e], layer: layer, expert: e)
                }
            }
            first += n
        }
    }

    /// Gate and up, SiLU, and the down projection for the experts `experts[0..<count]`, each
    /// expert's matrices applied to all of its (token, rank) pairs at once; pair p's output lands
    /// at `out + p * embedding`. Every pair gets bit for bit what `runExperts` computes for it.
    private func runExpertGroups(_ count: Int, experts ids: UnsafePointer<Int32>, gates: ExpertLinear, ups: ExpertLinear,
                                 downs: ExpertLinear, buffers b: BatchBuffers, state s: ForwardState,
                                 matrices: (Int) -> (gate: Linear, up: Linear, down: Linear)) {
        guard count > 0 else { return }
        let pool = s.pool, f = gates.outputs, stride = s.hiddenSize, d = downs.outputs
        let g = b.gate.pointer, u = b.up.pointer, out = b.out.pointer
        let downFormat = Linear.format(for: downs.type)
        let serial = Linear.format(for: gates.type) == .dequantizeRows || Linear.format(for: ups.type) == .dequantizeRows
            || downFormat == .dequantizeRows
        func run(_ n: Int, _ body: (Int) -> Void) {
            if serial { for i in 0..<n { body(i) } } else { pool.parallelFor(n, body) }
        }
        // Whole matrices as tasks once there are enough of them (as runExperts): each chunk's decode
        // kernel starts cold, and most experts of a decode batch serve one token (four random-token
        // sequences on olmoe Q4_0: 26.5 experts per layer, 80% of them for one token). Four chunks
        // per matrix had tg64 x4 at 85.8 t/s, whole matrices 94.5 (medians of 5, Zen 5).
        let chunks = serial ? 1 : Linear.chunkCount(rows: f, threads: pool.threads, matrices: 2 * count)
        run(count * 2 * chunks) { task in
            let e = Int(ids[task / (2 * chunks)]), rest = task % (2 * chunks)
            let lo = b.start[e], n = b.start[e + 1] - lo
            let rows = Linear.chunk(rest % chunks, of: chunks, rows: f)
            let m = matrices(e)
            if rest < chunks {
                m.gate.gemm(rows: rows, b.tokenRows, tokens: n, xIndex: b.pairTokens + lo, g, yStride: stride, yIndex: b.pairs32 + lo)
            } else {
                m.up.gemm(rows: rows, b.tokenRows, tokens: n, xIndex: b.pairTokens + lo, u, yStride: stride, yIndex: b.pairs32 + lo)
            }
        }
        var pairCount = 0
        for i in 0..<count {
            let e = Int(ids[i])
            for q in b.start[e]..<b.start[e + 1] {
                b.taskPairs[pairCount] = b.pairs[q]
                pairCount += 1
            }
        }
        run(pairCount) { task in  // SiLU and the down projection's activation, one pair per task
            let p = b.taskPairs[task]
            let gs = g + p * stride, us = u + p * stride
            moek_swiglu(gs, us, f)
            b.hiddenRows.prepare(p, gs, count: f, for: downFormat)
        }
        let outChunks = serial ? 1 : Linear.chunkCount(rows: d, threads: pool.threads, matrices: count)
        run(count * outChunks) { task in
            let e = Int(ids[task / outChunks])
            let lo = b.start[e], n = b.start[e + 1] - lo
            matrices(e).down.gemm(rows: Linear.chunk(task % outChunks, of: outChunks, rows: d), b.hiddenRows, tokens: n,
                                  xIndex: b.pairs32 + lo, out, yStride: d, yIndex: b.pairs32 + lo)
        }
    }
}
