/// Root-mean-square normalisation: `y = x / sqrt(mean(x^2) + eps) * weight`. The sum of squares
/// is accumulated in `Double`, as ggml does.
enum RMSNorm {
    /// Normalises `n` values of `x` into `y` (which may be `x`), scaling by `weight` when given.
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int,
                      weight: UnsafePointer<Float>?, epsilon: Float) {
        var sum = 0.0
        for i in 0..<n { sum += Double(x[i] * x[i]) }
        let scale = 1 / (Float(sum / Double(n)) + epsilon).squareRoot()
        if let weight {
            for i in 0..<n { y[i] = x[i] * scale * weight[i] }
        } else {
            for i in 0..<n { y[i] = x[i] * scale }
        }
    }
}
