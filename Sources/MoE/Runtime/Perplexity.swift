/// Held-out perplexity, computed the way `tools/train-demo-model/reference.py` computes it with
/// llama.cpp: the tokens are cut into non-overlapping windows of `window` tokens, each window is
/// evaluated from an empty cache, and every token after the first of its window is scored.
public struct PerplexityResult: Sendable {
    /// exp(mean negative log-likelihood).
    public let perplexity: Double
    /// Mean negative log-likelihood in nats.
    public let meanNLL: Double
    /// How many tokens were scored.
    public let scored: Int
}

extension Model {
    /// The perplexity of `tokens` in windows of `window` tokens (a last partial window of at
    /// least two tokens counts too).
    public func perplexity(of tokens: [Int32], window: Int, threads: Int = ThreadPool.processorCount) throws(MoEError) -> PerplexityResult {
        guard window >= 2 else { throw MoEError(.invalidArgument, "the perplexity window must be at least 2 tokens") }
        let session = try makeSession(contextLength: window, threads: threads)
        let n = config.vocabulary
        var total = 0.0
        var scored = 0
        var start = 0
        while start + 1 < tokens.count {
            let chunk = Array(tokens[start..<min(start + window, tokens.count)])
            session.reset()
            let logits = try session.evaluate(chunk, logits: .all)
            for i in 0..<(chunk.count - 1) {
                let row = logits[(i * n)..<((i + 1) * n)]
                let m = Double(row.max()!)
                var sum = 0.0
                for v in row { sum += _exp(Double(v) - m) }
                total += m + _log(sum) - Double(row[row.startIndex + Int(chunk[i + 1])])
                scored += 1
            }
            start += window
        }
        guard scored > 0 else { throw MoEError(.invalidArgument, "perplexity needs at least 2 tokens") }
        let mean = total / Double(scored)
        return PerplexityResult(perplexity: _exp(mean), meanNLL: mean, scored: scored)
    }
}

#if canImport(Glibc)
import Glibc
private func _exp(_ x: Double) -> Double { Glibc.exp(x) }
private func _log(_ x: Double) -> Double { Glibc.log(x) }
#elseif canImport(Darwin)
import Darwin
private func _exp(_ x: Double) -> Double { Darwin.exp(x) }
private func _log(_ x: Double) -> Double { Darwin.log(x) }
#endif
