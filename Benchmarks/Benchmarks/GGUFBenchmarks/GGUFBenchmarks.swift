// Benchmarks for the GGUF layer. They gate on allocations and instructions, which are repeatable
// on a busy machine; speed numbers for models come from `moe bench`.
import Benchmark
import Foundation
import MoE

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
