import MoEKernels

/// Causal grouped-query attention of one query position over a half-precision KV cache.
enum Attention {
    /// For each of `heads` query heads (`headSize` values each, in `q`), attends over positions
    /// `0..<length` of the cache and writes `valueSize` values per head to `out`. Query head `h`
    /// reads KV head `h / (heads / kvHeads)`. The cache is head-major: KV head j's key for
    /// position p is the `headSize` halves at `keys + (j * capacity + p) * headSize` (values
    /// likewise with `valueSize`), so one head's keys are one contiguous run. Scores are
    /// `q·k * scale`; the query is rounded to half precision for the dot product, and the softmax
    /// probabilities for the value sum, as ggml's attention does with an F16 cache (flash
    /// attention off).
    /// `scores` needs `length` floats and `qHalf` `headSize` halves per head in `only` (or all heads).
    static func attend(q: UnsafePointer<Float>, heads: Int, kvHeads: Int, headSize: Int, valueSize: Int,
                       keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>, capacity: Int, length: Int, scale: Float,
                       out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, qHalf: UnsafeMutablePointer<UInt16>,
                       only: Range<Int>? = nil) {
        let group = heads / kvHeads
        for head in only ?? 0..<heads {
            let kvHead = head / group
            moek_f32_to_f16(q + head * headSize, qHalf, headSize)
            moek_vec_dot_f16_rows(keys + kvHead * capacity * headSize, headSize, qHalf, headSize, length, scale, scores)
            // ggml multiplies the F16 values by the probabilities converted to F16.
            moek_softmax_f16_round(scores, length)
            let o = out + head * valueSize
            for i in 0..<valueSize { o[i] = 0 }
            moek_vec_mad_f16_rows(o, scores, values + kvHead * capacity * valueSize, valueSize, valueSize, length)
        }
    }
}
