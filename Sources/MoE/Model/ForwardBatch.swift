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
    let k: Int
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
        k = max(c.expertsUsed, 1)
        let d = c.embedding, e = max(c.experts, 1), n = capacity * k
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
                let ht = b.hs.pointer + t * d, ids = b.ids + t * k, w = b.weights.pointer + t * k
                let logitsOut = s.routerLogits.pointer
                routerWeights.apply(ht, logitsOut, buffer: s.input, pool: s.pool)
                router.gate(UnsafeMutableBufferPointer(start: logitsOut, count: c.experts))
                router.topK(UnsafeBufferPointer(start: logitsOut, count: c.experts), k: k, ids: ids, weights: w)
                let counts = s.expertCounts + l * c.experts
                for j in 0..<k { counts[Int(ids[j])] &+= 1 }
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

            // Combine each token's experts in rank order (as forward(token:) does), add the shared
            // expert, and the residual.
            let out = b.out.pointer, ffn = b.ffnOut.pointer
            let outChunks = Linear.chunkCount(rows: d, threads: s.pool.threads)
            s.pool.parallelFor(count * outChunks) { task in
                let t = task / outChunks
                let rows = Linear.chunk(task % outChunks, of: outChunks, rows: d)
                let o = ffn + t * d, w = b.weights.pointer + t * k
                for r in rows { o[r] = 0 }
                for j in 0..<k {
                    let y = out + (t * k + j) * d, wj = w[j]
                    for r in rows { o[r] += wj * y[r] }
                }
            }
            for t in 0..<count {
                let o = ffn + t * d, ht = b.hs.pointer + t * d, xt = b.xs.pointer + t * d
                if let shared {
                    swiGLU(gate: shared.gate, up: shared.up, down: shared.down, input: ht, output: s.gate.pointer, state: s)
                    var g: Float = 0
                    for i in 0..<d { g += shared.gateInput.pointer[i] * ht[i] }
                    let sigmoid = 1 / (1 + expf(-g))
                    for i in 0..<d { o[i] += sigmoid * s.gate.pointer[i] }
                }
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

        guard let store else {
            let n = gatherPairs(b, from: 0, count: distinctCount)
            computePairs(n, gates: gates, ups: ups, downs: downs, buffers: b, state: s) { p in
                let e = Int(b.ids[p])
                return (gates.expert(e), ups.expert(e), downs.expert(e))
            }
            return
        }
        // Resident experts first (stable), so the first wave is mostly hits.
        var front = 0
        for i in 0..<distinctCount where store.isResident(layer: layer, expert: Int(b.distinct[i])) {
            let e = b.distinct[i]
            for m in stride(from: i, to: front, by: -1) { b.distinct[m] = b.distinct[m - 1] }
            b.distinct[front] = e
            front += 1
        }
        let wave = max(k, min(distinctCount, store.slotCount / 2))
        var first = 0
        while first < distinctCount {
            let n = min(wave, distinctCount - first)
            let waveIds = b.distinct + first
            store.acquire(layer: layer, ids: waveIds, count: n, slots: b.waveSlots, predicted: nil, predictedCount: 0)
            for i in 0..<n {
                b.slotOf[Int(waveIds[i])] = b.waveSlots[i]
                b.pending[i] = true
            }
            var left = n
            do throws(MoEError) {
                while left > 0 {
                    let landed = try store.waitForReady(layer: layer, slots: b.waveSlots, pending: b.pending, count: n, ready: b.ready)
                    var pairCount = 0
                    for i in 0..<n where b.ready[i] {
                        b.ready[i] = false
                        let e = Int(waveIds[i])
                        for q in b.start[e]..<b.start[e + 1] {
                            b.taskPairs[pairCount] = b.pairs[q]
                            pairCount += 1
                        }
                    }
                    computePairs(pairCount, gates: gates, ups: ups, downs: downs, buffers: b, state: s) { p in
                        let e = Int(b.ids[p])
                        return store.matrices(slot: b.slotOf[e], layer: layer, expert: e)
                    }
                    left -= landed
                }
            } catch {
                store.release(slots: b.waveSlots, count: n)
                throw error
            }
            store.release(slots: b.waveSlots, count: n)
            first += n
        }
    }

    /// Copies the pairs of `distinct[from ..< from + count]` into `taskPairs`; returns how many.
    private func gatherPairs(_ b: BatchBuffers, from: Int, count: Int) -> Int {
        var n = 0
        for i in from..<(from + count) {
            let e = Int(b.distinct[i])
            for q in b.start[e]..<b.start[e + 1] {
                b.taskPairs[n] = b.pairs[q]
                n += 1
            }
        }
        return n
    }

    /// Gate and up, SiLU, and down for the pairs `taskPairs[0..<count]` (pair p = token * k + rank),
    /// with the same row chunks as `computeExperts`, so each pair's numbers match the one-token path.
    private func computePairs(_ count: Int, gates: ExpertLinear, ups: ExpertLinear, downs: ExpertLinear, buffers b: BatchBuffers,
                              state s: ForwardState, matrices: (Int) -> (gate: Linear, up: Linear, down: Linear)) {
        guard count > 0 else { return }
        let f = gates.outputs, stride = s.hiddenSize, d = downs.outputs, k = b.k
        let g = b.gate.pointer, u = b.up.pointer, out = b.out.pointer, pairs = b.taskPairs
        let downFormat = Linear.format(for: downs.type)
        let serial = Linear.format(for: gates.type) == .dequantizeRows || Linear.format(for: ups.type) == .dequantizeRows
            || downFormat == .dequantizeRows
        let chunks = serial ? 1 : Linear.chunkCount(rows: f, threads: s.pool.threads)
        func run(_ n: Int, _ body: (Int) -> Void) {
            if serial { for i in 0..<n { body(i) } } else { s.pool.parallelFor(n, body) }
        }
        run(count * 2 * chunks) { task in
            let p = pairs[task / (2 * chunks)], rest = task % (2 * chunks)
            let rows = Linear.chunk(rest % chunks, of: chunks, rows: f)
            let m = matrices(p)
            if rest < chunks {
                m.gate.apply(rows: rows, b.inputs[p / k], g + p * stride)
            } else {
                m.up.apply(rows: rows, b.inputs[p / k], u + p * stride)
            }
        }
        run(count) { i in
            let p = pairs[i]
            let gs = g + p * stride, us = u + p * stride
            for r in 0..<f { gs[r] = gs[r] / (1 + expf(-gs[r])) * us[r] }
            b.hidden[p].prepare(gs, count: f, for: downFormat)
        }
        let outChunks = serial ? 1 : Linear.chunkCount(rows: d, threads: s.pool.threads)
        run(count * outChunks) { task in
            let p = pairs[task / outChunks]
            let rows = Linear.chunk(task % outChunks, of: outChunks, rows: d)
            matrices(p).down.apply(rows: rows, b.hidden[p], out + p * d)
        }
    }
}
