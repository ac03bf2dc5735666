import MoEKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffers for evaluating a batch of tokens layer by layer: each token's residual stream and FFN
/// input, its routing, and each (token, rank) pair's expert activations and output. Allocated
/// once per session for `capacity` tokens, on the first prompt.
final class BatchBuffers {
    let capacity: Int
    let xs, hs, weights, out, gate, up, ffnOut: FloatStorage
    let ids: UnsafeMutablePointer<Int32>
    /// Each token's FFN input, converted for the expert matrices.
    let inputs: [ActivationBuffer]
    /// Each (token, rank) pair's SiLU output, converted for the down projection.
    let hidden: [ActivationBuffer]
    /// Pairs `t * k + j` grouped by expert: `pairs[start[e] ..< start[e + 1]]` chose expert e.
    let pairs: UnsafeMutablePointer<Int>
    let start: UnsafeMutablePointer<Int>
    let cursor: UnsafeMutablePointer<Int>
    /// The distinct experts of the current layer, and the store slot of each (by expert id).
    let distinct: UnsafeMutablePointer<Int32>
    let slotOf: UnsafeMutablePointer<Int32>
    let waveSlots: UnsafeMutablePointer<Int32>
    let pending, ready: UnsafeMutablePointer<Bool>
    /// The pairs of the experts being computed now.
    let taskPairs: UnsafeMutablePointer<Int>

    init(capacity: Int, config c: ModelConfig, hiddenSize: Int, widest: Int) {
        self.capacity = capacity
        let d = c.embedding, e = max(c.experts, 1), n = capacity * max(c.expertsUsed, 1)
        xs = FloatStorage(zeros: capacity * d)
        hs = FloatStorage(zeros: capacity * d)
        ffnOut = FloatStorage(zeros: capacity * d)
        weights = FloatStorage(zeros: n)
        out = FloatStorage(zeros: n * d)
        gate = FloatStorage(zeros: n * hiddenSize)
        up = FloatStorage(zeros: n * hiddenSize)
        ids = .allocate(capacity: n)
        ids.initialize(repeating: 0, count: n)
        inputs = (0..<capacity).map { _ in ActivationBuffer(capacity: widest) }
        hidden = (0..<n).map { _ in ActivationBuffer(capacity: widest) }
        pairs = .allocate(capacity: n)
        start = .allocate(capacity: e + 1)
        cursor = .allocate(capacity: e)
        distinct = .allocate(capacity: e)
        slotOf = .allocate(capacity: e)
        waveSlots = .allocate(capacity: e)
        pending = .allocate(capacity: e)
        ready = .allocate(capacity: e)
        taskPairs = .allocate(capacity: n)
    }

    deinit {
        ids.deallocate()
        pairs.deallocate()
        start.deallocate()
        cursor.deallocate()
        distinct.deallocate()
        slotOf.deallocate()
        waveSlots.deallocate()
        pending.deallocate()
        ready.deallocate()
        taskPairs.deallocate()
    }
}

extension Model {
    /// The most tokens one batched step evaluates; longer prompts go in steps of this size.
    static let batchCapacity = 64

    /// Runs `tokens` (at positions `position`, `position + 1`, ...) through every layer, layer by
    /// layer: attention token by token (each sees the keys and values before it), then the routed
    /// experts of the whole batch grouped by expert, so each expert's weights are fetched once for
    /// all the tokens that chose it; with an expert store, in waves of at most half the slots, the
    /// resident experts first, each distinct expert acquired (and read) at most once per batch.
    /// Every token gets bit for bit the result of `forward(token:)`. `logits(t)` says where token
    /// t's logits go (nil: not needed).
    func forward(batch tokens: UnsafeBufferPointer<Int32>, position: Int, state s: ForwardState,
                 logits: (Int) -> UnsafeMutablePointer<Float>?) throws(MoEError) {
        let c = config, d = c.embedding, count = tokens.count, k = c.expertsUsed
        precondition(count <= Model.batchCapacity)
        let b = s.batchBuffers(model: self)
        let x = s.x.pointer, h = s.h.pointer
        for t in 0..<count {
            _ = try? weights.embedding.dequantizeRow(Int(tokens[t]), into: UnsafeMutableBufferPointer(start: b.xs.pointer + t * d, count: d))
        }
        var logBase = 0
        if s.recordRouting && c.isMoE {
            logBase = s.routingLog.count
            s.routingLog.append(contentsOf: repeatElement(0, count: count * c.layers * k))
            s.routingWeightLog.append(contentsOf: repeatElement(0, count: count * c.layers * k))
        }
        s.predictedLayer = -1

        for (l, layer) in weights.layers.enumerated() {
            for t in 0..<count {
                let xt = b.xs.pointer + t * d
                x.update(from: xt, count: d)
                RMSNorm.apply(x, h, count: d, weight: layer.attentionNorm.pointer, epsilon: c.rmsEpsilon)
                attention(layer: layer, index: l, input: h, position: position + t, state: s)
                layer.output.apply(s.attention.pointer, s.ffnOut.pointer, buffer: s.input, pool: s.pool)
                for i in 0..<d { x[i] += s.ffnOut.pointer[i] }
                RMSNorm.apply(x, b.hs.pointer + t * d, count: d, weight: layer.ffnNorm.pointer, epsilon: c.rmsEpsilon)
                if case .dense(let gate, let up, let down) = layer.feedForward {
                    swiGLU(gate: gate, up: up, down: down, input: b.hs.pointer + t * d, output: s.ffnOut.pointer, state: s)
                    for i in 0..<d { x[i] += s.ffnOut.pointer[i] }
                }
                xt.update(from: x, count: d)
            }
            guard case .experts(let routerWeights, let gates, let ups, let downs, let shared) = layer.feedForward else { continue }

            // Route every token.
            for t in 0..<count {
                let ids = b.ids + t * k, w = b.weights.pointer + t * k
                route(b.hs.pointer + t * d, with: routerWeights, layer: l, ids: ids, weights: w, state: s)
                if s.recordRouting {
                    let at = logBase + (t * c.layers + l) * k
                    for j in 0..<k {
                        s.routingLog[at + j] = ids[j]
                        s.routingWeightLog[at + j] = w[j]
                    }
                }
                store?.noteRouting(layer: l, ids: ids, count: k)
            }
            try batchedExperts(gates: gates, ups: ups, downs: downs, layer: l, count: count, buffers: b, state: s)

            // Each token's experts in rank order (as forward(token:) sums them), the shared expert,
            // and the residual.
            let ffn = b.ffnOut.pointer
            combineRanks(tokens: count, k: k, weights: b.weights.pointer, experts: b.out.pointer, into: ffn, rows: d, pool: s.pool)
            for t in 0..<count {
                let o = ffn + t * d, xt = b.xs.pointer + t * d
                if let shared { addSharedExpert(shared, input: b.hs.pointer + t * d, output: o, state: s) }
                for i in 0..<d { xt[i] += o[i] }
            }
        }

        for t in 0..<count {
            guard let target = logits(t) else { continue }
            RMSNorm.apply(b.xs.pointer + t * d, h, count: d, weight: weights.outputNorm.pointer, epsilon: c.rmsEpsilon)
            weights.output.apply(h, target, buffer: s.input, pool: s.pool)
        }
    }

    /// The routed experts of a batch at `layer`: (token, rank) pairs grouped by expert, computed
    /// expert by expert; with a store, in waves of acquired experts, ready ones first.
    private func batchedExperts(gates: ExpertLinear, ups: ExpertLinear, downs: ExpertLinear, layer: Int, count: Int,
                                buffers b: BatchBuffers, state s: ForwardState) throws(MoEError) {
        let k = config.expertsUsed, experts = config.experts
        // Each token's input, converted once for the gate and up matrices.
        let gateFormat = Linear.format(for: gates.type), upFormat = Linear.format(for: ups.type)
        s.pool.parallelFor(count) { t in
            let ht = b.hs.pointer + t * config.embedding
            b.inputs[t].prepare(ht, count: gates.inputs, for: gateFormat)
            if upFormat != gateFormat { b.inputs[t].prepare(ht, count: ups.inputs, for: upFormat) }
        }
        // Counting sort of the pairs by expert.
        for e in 0...experts { b.start[e] = 0 }
        for p in 0..<(count * k) { b.start[Int(b.ids[p]) + 1] += 1 }
        for e in 0..<experts { b.start[e + 1] += b.start[e] }
        b.cursor.update(from: b.start, count: experts)
        for p in 0..<(count * k) {
            let e = Int(b.ids[p])
            b.pairs[b.cursor[e]] = p
            b.cursor[e] += 1
        }
        var distinctCount = 0
        for e in 0..<experts where b.start[e + 1] > b.start[e] {
            b.distinct[distinctCount] = Int32(e)
            distinctCount += 1
        }

        let scratch = ExpertScratch(gate: b.gate.pointer, up: b.up.pointer, out: b.out.pointer, hidden: b.hidden, stride: s.hiddenSize)
        let input: (Int) -> ActivationBuffer = { p in b.inputs[p / k] }
        guard let store else {
            // `pairs` already lists every pair, grouped by expert.
            runExperts(count * k, indices: b.pairs, gates: gates, ups: ups, downs: downs, scratch: scratch, pool: s.pool, input: input) { p in
                let e = Int(b.ids[p])
                return (gates.expert(e), ups.expert(e), downs.expert(e))
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
            try store.runAsReady(layer: layer, slots: b.waveSlots, count: n, pending: b.pending, ready: b.ready) {
                var pairCount = 0
                for i in 0..<n where b.ready[i] {
                    b.ready[i] = false
                    let e = Int(waveIds[i])
                    for q in b.start[e]..<b.start[e + 1] {
                        b.taskPairs[pairCount] = b.pairs[q]
                        pairCount += 1
                    }
                }
                runExperts(pairCount, indices: b.taskPairs, gates: gates, ups: ups, downs: downs, scratch: scratch, pool: s.pool, input: input) { p in
                    let e = Int(b.ids[p])
                    return store.matrices(slot: b.slotOf[e], layer: layer, expert: e)
                }
            }
            first += n
        }
    }
}
