import MoEKernels

/// Root-mean-square normalisation: `y = x / sqrt(mean(x^2) + eps) * weight`. The sum of squares
/// is accumulated in `Double`, as ggml does, in eight independent lanes (`moek_rms_norm`) instead
/// of one chain of dependent adds (the attention norm of 2048 values took 2.2-3.4 µs a layer so).
enum RMSNorm {
    /// Normalises `n` values of `x` into `y` (which may be `x`), scaling by `weight` when given.
    @inline(__always)
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int,
                      weight: UnsafePointer<Float>?, epsilon: Float) {
        moek_rms_norm(x, y, n, weight, epsilon)
    }
}
