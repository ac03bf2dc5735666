import MoEKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-session buffers for the forward pass: the KV cache (F16, as llama.cpp keeps it) and every
/// intermediate activation, allocated once.
final class ForwardState {
    let scratch: Scratch
    let keys: UnsafeMutablePointer<UInt16>    // [layer][position][kvHeads * headDimension]
    let values: UnsafeMutablePointer<UInt16>  // [layer][position][kvHeads * valueDimension]
    let x, h, q, k, v, attention, scores, ffnOut, expertOut, gate, up, routerLogits, expertWeights: FloatStorage
    let qHalf: UnsafeMutablePointer<UInt16>
    let expertIds: UnsafeMutablePointer<Int32>
    let contextLength: Int

    init(model: Model, contextLength: Int) {
        let c = model.config
        self.contextLength = contextLength
        let kvk = c.kvHeads * c.headDimension, kvv = c.kvHeads * c.valueDimension
        keys = .allocate(capacity: c.layers * contextLength * kvk)
        values = .allocate(capacity: c.layers * contextLength * kvv)
        scratch = Scratch(capacity: model.weights.widestInput)
        let hidden = max(c.expertFeedForward, c.feedForward, model.weights.widestInput)
        x = FloatStorage(zeros: c.embedding)
        h = FloatStorage(zeros: c.embedding)
        q = FloatStorage(zeros: c.heads * c.headDimension)
        k = FloatStorage(zeros: kvk)
        v = FloatStorage(zeros: kvv)
        attention = FloatStorage(zeros: c.heads * c.valueDimension)
        scores = FloatStorage(zeros: contextLength)
        ffnOut = FloatStorage(zeros: c.embedding)
        expertOut = FloatStorage(zeros: c.embedding)
        gate = FloatStorage(zeros: hidden)
        up = FloatStorage(zeros: hidden)
        routerLogits = FloatStorage(zeros: max(c.experts, 1))
        expertWeights = FloatStorage(zeros: max(c.expertsUsed, 1))
        qHalf = .allocate(capacity: c.headDimension)
        expertIds = .allocate(capacity: max(c.expertsUsed, 1))
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        qHalf.deallocate()
        expertIds.deallocate()
    }
}

extension Model {
    /// Runs one token at `position` through every layer, appending its keys and values to the
    /// cache; writes the vocabulary logits to `logits` when given.
    func forward(token: Int, position: Int, state s: ForwardState, logits: UnsafeMutablePointer<Float>?) {
        let c = config
        let x = s.x.pointer, h = s.h.pointer
        let d = c.embedding
        _ = try? weights.embedding.dequantizeRow(token, into: UnsafeMutableBufferPointer(start: x, count: d))

        for (l, layer) in weights.layers.enumerated() {
            // Attention block.
            RMSNorm.apply(x, h, count: d, weight: layer.attentionNorm.pointer, epsilon: c.rmsEpsilon)
            attention(layer: layer, index: l, input: h, position: position, state: s)
            layer.output.apply(s.attention.pointer, s.ffnOut.pointer, scratch: s.scratch)
            for i in 0..<d { x[i] += s.ffnOut.pointer[i] }

            // Feed-forward block.
            RMSNorm.apply(x, h, count: d, weight: layer.ffnNorm.pointer, epsilon: c.rmsEpsilon)
            feedForward(layer.feedForward, input: h, output: s.ffnOut.pointer, state: s)
            for i in 0..<d { x[i] += s.ffnOut.pointer[i] }
        }

        guard let logits else { return }
        RMSNorm.apply(x, h, count: d, weight: weights.outputNorm.pointer, epsilon: c.rmsEpsilon)
        weights.output.apply(h, logits, scratch: s.scratch)
    }

    /// Q/K/V projections, q/k norms, RoPE, the cache append, and grouped-query attention over
    /// positions 0...position; the result lands in `state.attention`.
    private func attention(layer: LayerWeights, index l: Int, input h: UnsafePointer<Float>, position: Int, state s: ForwardState) {
        let c = config
        let hd = c.headDimension, vd = c.valueDimension
        let q = s.q.pointer, k = s.k.pointer, v = s.v.pointer
        layer.q.apply(h, q, scratch: s.scratch)
        layer.k.apply(h, k, scratch: s.scratch)
        layer.v.apply(h, v, scratch: s.scratch)
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
        rope.apply(q, heads: c.heads, headSize: hd, position: position)
        rope.apply(k, heads: c.kvHeads, headSize: hd, position: position)

        let kvk = c.kvHeads * hd, kvv = c.kvHeads * vd
        let layerKeys = s.keys + l * s.contextLength * kvk
        let layerValues = s.values + l * s.contextLength * kvv
        moek_f32_to_f16(k, layerKeys + position * kvk, kvk)
        moek_f32_to_f16(v, layerValues + position * kvv, kvv)

        Attention.attend(q: q, heads: c.heads, kvHeads: c.kvHeads, headSize: hd, valueSize: vd,
                         keys: layerKeys, values: layerValues, length: position + 1, scale: 1 / Float(hd).squareRoot(),
                         out: s.attention.pointer, scores: s.scores.pointer, qHalf: s.qHalf)
    }

    /// The feed-forward block: routed experts (plus a shared expert) or a dense SwiGLU.
    private func feedForward(_ weights: FeedForwardWeights, input h: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, state s: ForwardState) {
        let d = config.embedding
        switch weights {
        case .dense(let gate, let up, let down):
            swiGLU(gate: gate, up: up, down: down, input: h, output: output, state: s)
        case .experts(let routerWeights, let gates, let ups, let downs, let shared):
            let logits = s.routerLogits.pointer, k = config.expertsUsed
            routerWeights.apply(h, logits, scratch: s.scratch)
            router.gate(UnsafeMutableBufferPointer(start: logits, count: config.experts))
            router.topK(UnsafeBufferPointer(start: logits, count: config.experts), k: k, ids: s.expertIds, weights: s.expertWeights.pointer)
            for i in 0..<d { output[i] = 0 }
            for slot in 0..<k {
                let e = Int(s.expertIds[slot])
                swiGLU(gate: gates.expert(e), up: ups.expert(e), down: downs.expert(e), input: h, output: s.expertOut.pointer, state: s)
                let w = s.expertWeights.pointer[slot]
                for i in 0..<d { output[i] += w * s.expertOut.pointer[i] }
            }
            if let shared {
                swiGLU(gate: shared.gate, up: shared.up, down: shared.down, input: h, output: s.expertOut.pointer, state: s)
                var g: Float = 0
                for i in 0..<d { g += shared.gateInput.pointer[i] * h[i] }
                let sigmoid = 1 / (1 + expf(-g))
                for i in 0..<d { output[i] += sigmoid * s.expertOut.pointer[i] }
            }
        }
    }

    /// `down(silu(gate x) * up x)`.
    private func swiGLU(gate: Linear, up: Linear, down: Linear, input h: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, state s: ForwardState) {
        let g = s.gate.pointer, u = s.up.pointer
        gate.apply(h, g, scratch: s.scratch)
        up.apply(h, u, scratch: s.scratch)
        for i in 0..<gate.outputs { g[i] = g[i] / (1 + expf(-g[i])) * u[i] }
        down.apply(g, output, scratch: s.scratch)
    }
}
