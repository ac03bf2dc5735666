// Benchmarks for the GGUF layer, text and the kernels. GGUF ones gate on allocations, which are
// repeatable on a busy machine; the kernel ones report wall clock; models are measured by `moe bench`.
import Benchmark
import Foundation
import MoE
import MoEKernels

/// A sparse 47 GB Mixtral-shaped file with a 32k-token vocabulary, written once per run.
let hugeModelPath: String = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("swift-moe-bench-huge.gguf").path
    var w = GGUFWriter(architecture: "llama")
    w.set("llama.block_count", .uint32(18))
    w.set("llama.expert_count", .uint32(80))
    w.set("llama.expert_used_count", .uint32(2))
    w.set("tokenizer.ggml.tokens", .array(GGUFArray(strings: (0..<32000).map { "token\($0)" })))
    for layer in 0..<18 {
        try! w.addTensor("blk.\(layer).ffn_up_exps.weight", type: .q4_0, shape: [4096, 14336, 80], data: .zeros)
    }
    try! w.write(to: path)
    return path
}()

/// The repository's embedded demo model (its byte-level BPE vocabulary has 4096 tokens).
let demoModelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models/demo-austen-moe.gguf").path

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.instructions, .mallocCountTotal, .peakMemoryResident, .wallClock],
                                           maxDuration: .seconds(3))

    // Opening must stay O(header): no tensor data read, vocabulary arrays left in the mapping.
    Benchmark("GGUFFile.open (47 GB sparse, 32k vocab)",
              configuration: .init(thresholds: [.mallocCountTotal: .init(absolute: [.p90: 400])])) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! GGUFFile(path: hugeModelPath))
        }
    }

    let row = (0..<4096).map { Float(sin(Double($0))) }
    for type in [GGMLType.q4_0, .q8_0, .q4_K, .q6_K] {
        let bytes = try! type.quantize(row)
        Benchmark("dequantize 4096 \(type.name)") { benchmark in
            var out = [Float](repeating: 0, count: 4096)
            for _ in benchmark.scaledIterations {
                bytes.withUnsafeBytes { src in
                    out.withUnsafeMutableBufferPointer { dst in try! type.dequantize(src, count: 4096, into: dst) }
                }
                blackHole(out)
            }
        }
    }

    // Kernels on one thread: a 1024x2048 matrix (an OLMoE expert's gate) of random blocks with
    // sane scales, applied to one token four rows at a time, and to groups of tokens through the
    // matrix-matrix entry point (which picks the four-row kernel per token or the tiles).
    let inputs = 2048, outputs = 1024
    var g = SystemRandomNumberGenerator()
    let activations = (0..<(256 * inputs)).map { _ in Float.random(in: -1...1, using: &g) }
    let q8 = UnsafeMutablePointer<moek_block_q8_0>.allocate(capacity: 256 * inputs / 32)
    let offsets = UnsafeMutablePointer<Int32>.allocate(capacity: 256 * inputs / 32)
    let q8K = UnsafeMutablePointer<moek_block_q8_K>.allocate(capacity: 256 * inputs / 256)
    for t in 0..<256 {
        activations.withUnsafeBufferPointer { x in
            moek_quantize_row_q8_0(x.baseAddress! + t * inputs, q8 + t * inputs / 32, inputs)
            moek_q8_0_offsets(q8 + t * inputs / 32, inputs, offsets + t * inputs / 32)
            moek_quantize_row_q8_K(x.baseAddress! + t * inputs, q8K + t * inputs / 256, inputs)
        }
    }
    let weights = (0..<(outputs * inputs)).map { i in Float(sin(Double(i) * 0.7311)) }
    for type in [GGMLType.q4_0, .q8_0, .q4_K, .q6_K] {
        let matrix = try! type.quantize(weights)
        let rowBytes = inputs / type.blockSize * type.blockBytes
        Benchmark("kernel \(type.name) four-row, 1024x2048 x 1 token", configuration: .init(metrics: [.wallClock])) { benchmark in
            var out = [Float](repeating: 0, count: outputs)
            matrix.withUnsafeBytes { w in
                out.withUnsafeMutableBufferPointer { y in
                    for _ in benchmark.scaledIterations {
                        for r in stride(from: 0, to: outputs, by: 4) {
                            let row = w.baseAddress! + r * rowBytes
                            switch type {
                            case .q4_0: moek_vec_dot4_q4_0_q8_0(row, rowBytes, q8, offsets, inputs, y.baseAddress! + r)
                            case .q8_0: moek_vec_dot4_q8_0_q8_0(row, rowBytes, q8, inputs, y.baseAddress! + r)
                            case .q4_K: moek_vec_dot4_q4_K_q8_K(row, rowBytes, q8K, inputs, y.baseAddress! + r)
                            default: moek_vec_dot4_q6_K_q8_K(row, rowBytes, q8K, inputs, y.baseAddress! + r)
                            }
                        }
                    }
                }
            }
            blackHole(out)
        }
        for tokens in [2, 16, 64, 256] {
            Benchmark("kernel \(type.name) matrix-matrix, 1024x2048 x \(tokens) tokens", configuration: .init(metrics: [.wallClock])) { benchmark in
                var out = [Float](repeating: 0, count: outputs * tokens)
                matrix.withUnsafeBytes { w in
                    out.withUnsafeMutableBufferPointer { y in
                        for _ in benchmark.scaledIterations {
                            switch type {
                            case .q4_0: moek_gemm_q4_0_q8_0(w.baseAddress, rowBytes, outputs, inputs, q8, offsets, inputs / 32, nil, tokens, y.baseAddress, outputs, nil)
                            case .q8_0: moek_gemm_q8_0_q8_0(w.baseAddress, rowBytes, outputs, inputs, q8, offsets, inputs / 32, nil, tokens, y.baseAddress, outputs, nil)
                            case .q4_K: moek_gemm_q4_K_q8_K(w.baseAddress, rowBytes, outputs, inputs, q8K, inputs / 256, nil, tokens, y.baseAddress, outputs, nil)
                            default: moek_gemm_q6_K_q8_K(w.baseAddress, rowBytes, outputs, inputs, q8K, inputs / 256, nil, tokens, y.baseAddress, outputs, nil)
                            }
                        }
                    }
                }
                blackHole(out)
            }
        }
    }

    // Text: tokenizing a prompt and sampling over a large vocabulary.
    let tokenizer = try! Tokenizer(file: GGUFFile(path: demoModelPath))
    let text = String(repeating: "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. ", count: 90)
    Benchmark("Tokenizer.encode 10 KB of English (byte-level BPE)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(tokenizer.encode(text)) }
    }
    let logits = (0..<151_936).map { Float(sin(Double($0) * 0.37)) * 8 }
    Benchmark("Sampler.sample over 151,936 logits (top-k 40, top-p, min-p)") { benchmark in
        var sampler = try! Sampler(SamplingOptions())
        for _ in benchmark.scaledIterations { blackHole(sampler.sample(logits)) }
    }
}
