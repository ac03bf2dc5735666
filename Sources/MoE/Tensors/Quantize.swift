/// Quantization from `Float` into ggml block layouts. Q8_0, Q4_0 and Q8_K follow ggml's
/// reference rounding exactly (so files we write match files written by the `gguf` package);
/// Q4_K and Q6_K use our own least-squares fit of scales and minimums.
extension GGMLType {
    /// The types `quantize` can produce.
    public static let quantizable: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_K, .q6_K, .q8_K]

    /// Quantizes `values` (a whole number of blocks) into `destination`.
    public func quantize(_ values: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawBufferPointer) throws(MoEError) {
        guard GGMLType.quantizable.contains(self) else {
            throw MoEError(.unsupported, "quantizing to \(name) is not supported; supported: \(GGMLType.quantizable.map(\.name).joined(separator: ", "))")
        }
        guard let bytes = byteCount(elements: values.count) else {
            throw MoEError(.invalidArgument, "\(values.count) values is not a whole number of \(name) blocks of \(blockSize)")
        }
        guard destination.count >= bytes else {
            throw MoEError(.invalidArgument, "quantizing \(values.count) values to \(name) needs \(bytes) bytes, got \(destination.count)")
        }
        guard let src = values.baseAddress, let dst = destination.baseAddress else { return }
        for b in 0..<(values.count / blockSize) {
            let x = src + b * blockSize, y = dst + b * blockBytes
            switch self {
            case .f32: y.storeBytes(of: x[0].bitPattern.littleEndian, as: UInt32.self)
            case .f16: y.storeBytes(of: HalfPrecision.half(fromFloat: x[0]).littleEndian, as: UInt16.self)
            case .bf16: y.storeBytes(of: HalfPrecision.bfloat16(fromFloat: x[0]).littleEndian, as: UInt16.self)
            case .q8_0: Quantizer.q8_0(x, y)
            case .q4_0: Quantizer.q4_0(x, y)
            case .q4_K: Quantizer.q4_K(x, y)
            case .q6_K: Quantizer.q6_K(x, y)
            case .q8_K: Quantizer.q8_K(x, y)
            default: break
            }
        }
    }

    /// Quantizes an array of values into a new byte array.
    public func quantize(_ values: [Float]) throws(MoEError) -> [UInt8] {
        guard let bytes = byteCount(elements: values.count) else {
            throw MoEError(.invalidArgument, "\(values.count) values is not a whole number of \(name) blocks of \(blockSize)")
        }
        var out = [UInt8](repeating: 0, count: bytes)
        var failure: MoEError?
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in
                do throws(MoEError) { try quantize(src, into: dst) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }
}

/// The per-block quantizers.
enum Quantizer {
    @inline(__always) static func storeHalf(_ v: Float, _ p: UnsafeMutableRawPointer, _ at: Int) -> Float {
        let h = HalfPrecision.half(fromFloat: v)
        p.storeBytes(of: h.littleEndian, toByteOffset: at, as: UInt16.self)
        return HalfPrecision.float(fromHalf: h)
    }

    /// `v` rounded as asked and clamped into -2^20...2^20; NaN becomes 0. Never traps.
    @inline(__always) static func level(_ v: Float, _ rule: FloatingPointRoundingRule = .toNearestOrAwayFromZero) -> Int {
        guard v.isFinite else { return v.isNaN ? 0 : (v > 0 ? 1 << 20 : -(1 << 20)) }
        return Int(max(-1_048_576, min(1_048_576, v.rounded(rule))))
    }

    /// The element of largest magnitude (keeping its sign), and that magnitude.
    @inline(__always) static func signedMax(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var best: Float = 0, magnitude: Float = 0
        for i in 0..<n where abs(x[i]) > magnitude { magnitude = abs(x[i]); best = x[i] }
        return (best, magnitude)
    }

    /// Q8_0 as ggml's reference: d = max|x| / 127, q = round(x / d).
    static func q8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for i in 0..<32 { amax = max(amax, abs(x[i])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        _ = storeHalf(d, y, 0)
        for i in 0..<32 {
            y.storeBytes(of: Int8(clamping: level(x[i] * id)), toByteOffset: 2 + i, as: Int8.self)
        }
    }

    /// Q4_0 as ggml's reference: d = (signed max) / -8, q = min(15, trunc(x / d + 8.5)).
    static func q4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (maxValue, _) = signedMax(x, 32)
        let d = maxValue / -8
        let id: Float = d != 0 ? 1 / d : 0
        _ = storeHalf(d, y, 0)
        for j in 0..<16 {
            let a = min(15, Int8(clamping: level(x[j] * id + 8.5, .towardZero)))
            let b = min(15, Int8(clamping: level(x[j + 16] * id + 8.5, .towardZero)))
            y.storeBytes(of: UInt8(a) | (UInt8(b) << 4), toByteOffset: 2 + j, as: UInt8.self)
        }
    }

    /// Q8_K as ggml's reference: scale so the largest magnitude maps to -127, plus block sums.
    static func q8_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (maxValue, magnitude) = signedMax(x, 256)
        guard magnitude > 0 else {
            (y + 0).initializeMemory(as: UInt8.self, repeating: 0, count: 292)
            return
        }
        let iscale = -127 / maxValue
        y.storeBytes(of: (1 / iscale).bitPattern.littleEndian, toByteOffset: 0, as: UInt32.self)
        for block in 0..<16 {
            var sum: Int16 = 0
            for i in 0..<16 {
                let q = Int8(clamping: level(iscale * x[block * 16 + i], .toNearestOrEven))
                y.storeBytes(of: q, toByteOffset: 4 + block * 16 + i, as: Int8.self)
                sum += Int16(q)
            }
            y.storeBytes(of: sum.littleEndian, toByteOffset: 260 + 2 * block, as: Int16.self)
        }
    }

    /// Fits x ≈ scale * q - offset with q in 0...levels, offset ≥ 0, by alternating rounding and
    /// least squares. Returns (scale, offset).
    static func fitAffine(_ x: UnsafePointer<Float>, _ n: Int, levels: Int) -> (Float, Float) {
        var lo: Float = 0, hi = -Float.infinity
        for i in 0..<n { lo = min(lo, x[i]); hi = max(hi, x[i]) }
        guard hi > lo else { return (0, -lo) }
        var scale = (hi - lo) / Float(levels)
        var low = lo
        for _ in 0..<4 {
            var sl: Float = 0, sll: Float = 0, sx: Float = 0, slx: Float = 0
            for i in 0..<n {
                let l = Float(max(0, min(levels, level((x[i] - low) / scale))))
                sl += l; sll += l * l; sx += x[i]; slx += l * x[i]
            }
            let det = Float(n) * sll - sl * sl
            guard det > 0 else { break }
            var newScale = (Float(n) * slx - sl * sx) / det
            var newLow = (sx * sll - sl * slx) / det
            if newLow > 0 { newLow = 0; newScale = sll > 0 ? slx / sll : scale }
            guard newScale > 0 else { break }
            scale = newScale; low = newLow
        }
        return (scale, -low)
    }

    /// Q4_K: eight 32-element sub-blocks, each x ≈ d*sc*q - dmin*m with 6-bit sc and m.
    static func q4_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
        for j in 0..<8 { (scales[j], mins[j]) = fitAffine(x + 32 * j, 32, levels: 15) }
        let d = storeHalf((scales.max() ?? 0) / 63, y, 0)
        let dmin = storeHalf((mins.max() ?? 0) / 63, y, 2)
        var sc = [UInt8](repeating: 0, count: 8), m = [UInt8](repeating: 0, count: 8)
        for j in 0..<8 {
            sc[j] = d > 0 ? UInt8(min(63, max(0, level(scales[j] / d)))) : 0
            m[j] = dmin > 0 ? UInt8(min(63, max(0, level(mins[j] / dmin)))) : 0
        }
        for j in 0..<4 {
            y.storeBytes(of: sc[j] | ((sc[j + 4] >> 4) << 6), toByteOffset: 4 + j, as: UInt8.self)
            y.storeBytes(of: m[j] | ((m[j + 4] >> 4) << 6), toByteOffset: 8 + j, as: UInt8.self)
            y.storeBytes(of: (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4), toByteOffset: 12 + j, as: UInt8.self)
        }
        var levels = [UInt8](repeating: 0, count: 256)
        for j in 0..<8 {
            let step = d * Float(sc[j]), offset = dmin * Float(m[j])
            for i in 0..<32 where step > 0 {
                levels[32 * j + i] = UInt8(max(0, min(15, level((x[32 * j + i] + offset) / step))))
            }
        }
        for chunk in 0..<4 {
            for l in 0..<32 {
                let byte = levels[64 * chunk + l] | (levels[64 * chunk + 32 + l] << 4)
                y.storeBytes(of: byte, toByteOffset: 16 + 32 * chunk + l, as: UInt8.self)
            }
        }
    }

    /// Q6_K: sixteen 16-element sub-blocks, x ≈ d * sc * (q - 32) with int8 sc and 6-bit q.
    static func q6_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var subScales = [Float](repeating: 0, count: 16)
        var largest: Float = 0, largestMagnitude: Float = 0
        for j in 0..<16 {
            let (v, _) = signedMax(x + 16 * j, 16)
            subScales[j] = v / -32
            if abs(subScales[j]) > largestMagnitude { largestMagnitude = abs(subScales[j]); largest = subScales[j] }
        }
        let iscale: Float = largestMagnitude > 0 ? -128 / largest : 0
        let d = storeHalf(iscale != 0 ? 1 / iscale : 0, y, 208)
        var levels = [UInt8](repeating: 32, count: 256)
        for j in 0..<16 {
            let sc = Int8(clamping: level(iscale * subScales[j]))
            y.storeBytes(of: sc, toByteOffset: 192 + j, as: Int8.self)
            let step = d * Float(sc)
            guard step != 0 else { continue }
            for i in 0..<16 {
                levels[16 * j + i] = UInt8(max(-32, min(31, level(x[16 * j + i] / step))) + 32)
            }
        }
        for half in 0..<2 {
            for l in 0..<32 {
                let base = 128 * half
                let q1 = levels[base + l], q2 = levels[base + l + 32], q3 = levels[base + l + 64], q4 = levels[base + l + 96]
                y.storeBytes(of: (q1 & 0xF) | ((q3 & 0xF) << 4), toByteOffset: 64 * half + l, as: UInt8.self)
                y.storeBytes(of: (q2 & 0xF) | ((q4 & 0xF) << 4), toByteOffset: 64 * half + l + 32, as: UInt8.self)
                y.storeBytes(of: (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6),
                             toByteOffset: 128 + 32 * half + l, as: UInt8.self)
            }
        }
    }
}
