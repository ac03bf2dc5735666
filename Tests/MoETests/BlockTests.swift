import Foundation
import Testing
@testable import MoE

/// The shared blocks, each against values worked out by hand or a naive reference.
@Suite("Model blocks")
struct BlockTests {
    @Test("RMSNorm divides by the root mean square (plus epsilon) and scales by the weight")
    func rmsNorm() {
        let x: [Float] = [1, 2, 3, 4]
        let w: [Float] = [1, 0.5, 2, 1]
        var y = [Float](repeating: 0, count: 4)
        RMSNorm.apply(x, &y, count: 4, weight: w, epsilon: 0)
        let rms = Float((1.0 + 4 + 9 + 16) / 4).squareRoot()
        #expect(zip(y, [1 / rms, 1 / rms, 6 / rms, 4 / rms]).allSatisfy { abs($0 - $1) < 1e-6 })
        RMSNorm.apply(x, &y, count: 4, weight: nil, epsilon: 7.5)  // mean square 7.5 + 7.5 = 15
        #expect(abs(y[3] - 4 / Float(15).squareRoot()) < 1e-6)
    }

    @Test("RMSNorm over long and odd-length rows: eight double lanes added in order, within a float rounding of one sequential double sum")
    func rmsNormLanes() {
        var g = SplitMix(seed: 17)
        for n in [1, 7, 8, 9, 2048, 2051] {
            // Magnitudes spread over six decades, so that the order of the double adds shows.
            let x = (0..<n).map { _ in Float.random(in: -1...1, using: &g) * powf(10, Float.random(in: -3...3, using: &g)) }
            let w = (0..<n).map { _ in Float.random(in: 0.5...1.5, using: &g) }
            var y = [Float](repeating: 0, count: n)
            RMSNorm.apply(x, &y, count: n, weight: w, epsilon: 1e-6)
            var lanes = [Double](repeating: 0, count: 8)
            for i in 0..<n { lanes[i % 8] += Double(x[i] * x[i]) }
            let laneSum = lanes.dropFirst().reduce(lanes[0], +)
            let scale = 1 / (Float(laneSum / Double(n)) + 1e-6).squareRoot()
            #expect(y == (0..<n).map { x[$0] * scale * w[$0] })
            var sequential = 0.0
            for i in 0..<n { sequential += Double(x[i] * x[i]) }
            let seqScale = 1 / (Float(sequential / Double(n)) + 1e-6).squareRoot()
            #expect(abs(scale - seqScale) <= seqScale.ulp)
        }
    }

    @Test("a RoPE table holds each pair's cosine and sine at the position, interleaved")
    func ropeTable() {
        let rope = RoPE(style: .neox, dimensions: 8, base: 10_000, scaling: .none)
        var table = [Float](repeating: .nan, count: rope.tableCount)
        rope.fillTable(&table, position: 7)
        #expect(table.count == 8)
        for i in 0..<4 {
            let theta = 7 * powf(10_000, -Float(2 * i) / 8)
            #expect(abs(table[2 * i] - cos(theta)) < 1e-5 && abs(table[2 * i + 1] - sin(theta)) < 1e-5)
        }
    }

    func rotated(_ style: RoPE.Style, dims: Int = 4, position: Int, scaling: ModelConfig.RoPEScaling = .none) -> [Float] {
        var v: [Float] = [1, 2, 3, 4]
        let rope = RoPE(style: style, dimensions: dims, base: 10_000, scaling: scaling)
        var table = [Float](repeating: .nan, count: rope.tableCount)
        rope.fillTable(&table, position: position)
        rope.apply(&v, heads: 1, headSize: 4, table: table)
        return v
    }

    func rotate(_ a: Float, _ b: Float, by theta: Float) -> (Float, Float) {
        (a * cos(theta) - b * sin(theta), a * sin(theta) + b * cos(theta))
    }

    func close(_ a: [Float], _ b: [Float]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 } }

    @Test("normal RoPE rotates adjacent pairs; NeoX rotates the two halves")
    func ropeStyles() {
        // Head of 4: frequencies 1 and 10000^(-1/2) = 0.01; position 3.
        let (a0, a1) = rotate(1, 2, by: 3), (a2, a3) = rotate(3, 4, by: 0.03)
        #expect(close(rotated(.normal, position: 3), [a0, a1, a2, a3]))
        let (b0, b2) = rotate(1, 3, by: 3), (b1, b3) = rotate(2, 4, by: 0.03)
        #expect(close(rotated(.neox, position: 3), [b0, b1, b2, b3]))
        #expect(rotated(.normal, position: 0) == [1, 2, 3, 4])
    }

    @Test("partial rotary leaves the dimensions past rope.dimension_count alone")
    func partialRope() {
        let (a0, a1) = rotate(1, 2, by: 5)
        #expect(close(rotated(.normal, dims: 2, position: 5), [a0, a1, 3, 4]))
        #expect(close(rotated(.neox, dims: 2, position: 5), [a0, a1, 3, 4]))
    }

    @Test("linear RoPE scaling by 2 at position 6 equals no scaling at position 3")
    func linearScaling() {
        #expect(close(rotated(.neox, position: 6, scaling: .linear(factor: 2)), rotated(.neox, position: 3)))
    }

    @Test("softmax gating, then top-k: descending, ties to the lower index, optional renormalisation and scale")
    func router() {
        var logits: [Float] = [1, 4, 2, 4, 3]
        let plain = Router(options: .init(gating: .softmax, normalizeTopK: false))
        logits.withUnsafeMutableBufferPointer { plain.gate($0) }
        let total = [1, 4, 2, 4, 3].map { exp(Float($0)) }.reduce(0, +)
        #expect(abs(logits[1] - exp(4) / total) < 1e-6)
        var ids = [Int32](repeating: -1, count: 3), weights = [Float](repeating: 0, count: 3)
        logits.withUnsafeBufferPointer { plain.topK($0, k: 3, ids: &ids, weights: &weights) }
        #expect(ids == [1, 3, 4], "the tie between experts 1 and 3 goes to 1")
        #expect(abs(weights[0] - logits[1]) < 1e-7 && abs(weights[2] - logits[4]) < 1e-7)

        let normalized = Router(options: .init(gating: .softmax, normalizeTopK: true, scale: 2))
        logits.withUnsafeBufferPointer { normalized.topK($0, k: 2, ids: &ids, weights: &weights) }
        #expect(ids[0..<2] == [1, 3])
        #expect(abs(weights[0] - 1) < 1e-6 && abs(weights[1] - 1) < 1e-6, "two equal weights renormalise to 1/2 each, times 2")

        let tiny: [Float] = [0, 0, 0, 0]
        logits = tiny
        tiny.withUnsafeBufferPointer { Router(options: .init(normalizeTopK: true)).topK($0, k: 2, ids: &ids, weights: &weights) }
        #expect(ids[0..<2] == [0, 1] && weights[0] == 0, "all-zero weights do not divide by zero")
    }

    @Test("attention matches a naive double-precision reference, with GQA and causal length")
    func attentionAgainstNaive() {
        let heads = 4, kvHeads = 2, hs = 8, vs = 6, length = 5
        var g = SplitMix(seed: 3)
        let q = (0..<(heads * hs)).map { _ in g.normal() }
        let rowKeys = (0..<(length * kvHeads * hs)).map { _ in HalfPrecision.half(fromFloat: g.normal()) }
        let rowValues = (0..<(length * kvHeads * vs)).map { _ in HalfPrecision.half(fromFloat: g.normal()) }
        var out = [Float](repeating: 0, count: heads * vs), scores = [Float](repeating: 0, count: length)
        var qHalf = [UInt16](repeating: 0, count: hs)
        let scale = 1 / Float(hs).squareRoot()
        // Head-major cache with room for two positions more than used: head j's position p at j * capacity + p.
        let capacity = length + 2
        var keys = [UInt16](repeating: 0, count: kvHeads * capacity * hs), values = [UInt16](repeating: 0, count: kvHeads * capacity * vs)
        for p in 0..<length {
            for j in 0..<kvHeads {
                for i in 0..<hs { keys[(j * capacity + p) * hs + i] = rowKeys[p * kvHeads * hs + j * hs + i] }
                for i in 0..<vs { values[(j * capacity + p) * vs + i] = rowValues[p * kvHeads * vs + j * vs + i] }
            }
        }
        Attention.attend(q: q, heads: heads, kvHeads: kvHeads, headSize: hs, valueSize: vs, keys: keys, values: values,
                         capacity: capacity, length: length, scale: scale, out: &out, scores: &scores, qHalf: &qHalf)
        for h in 0..<heads {
            let kv = h / 2
            let s = (0..<length).map { p in
                (0..<hs).reduce(0.0) { acc, i in
                    acc + Double(HalfPrecision.float(fromHalf: HalfPrecision.half(fromFloat: q[h * hs + i])))
                        * Double(HalfPrecision.float(fromHalf: rowKeys[p * kvHeads * hs + kv * hs + i]))
                } * Double(scale)
            }
            let m = s.max()!
            let e = s.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for i in 0..<vs {
                let expected = (0..<length).reduce(0.0) { acc, p in
                    acc + Double(HalfPrecision.float(fromHalf: HalfPrecision.half(fromFloat: Float(e[p] / z))))
                        * Double(HalfPrecision.float(fromHalf: rowValues[p * kvHeads * vs + kv * vs + i]))
                }
                #expect(abs(Double(out[h * vs + i]) - expected) < 1e-5, "head \(h) value \(i)")
            }
        }
    }
}
