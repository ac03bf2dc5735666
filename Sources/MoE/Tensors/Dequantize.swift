/// Scalar dequantization of every ggml block layout swift-moe reads. These are the reference
/// implementations: clear rather than fast. Layouts follow ggml's `block_*` structs.
extension GGMLType {
    /// Dequantizes `count` elements stored in `source` into `destination`.
    /// `count` must be a whole number of blocks, and both buffers large enough.
    public func dequantize(_ source: UnsafeRawBufferPointer, count: Int,
                           into destination: UnsafeMutableBufferPointer<Float>) throws(MoEError) {
        guard traits.dequantizable else {
            throw MoEError(.unsupported, "dequantizing \(name) is not supported")
        }
        guard let bytes = byteCount(elements: count) else {
            throw MoEError(.invalidArgument, "\(count) elements is not a whole number of \(name) blocks of \(blockSize)")
        }
        guard source.count >= bytes, destination.count >= count else {
            throw MoEError(.invalidArgument, "dequantizing \(count) \(name) elements needs \(bytes) source bytes and \(count) floats; got \(source.count) and \(destination.count)")
        }
        guard count > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let blocks = count / blockSize
        let kernel = Dequantizer.kernel(for: self)
        for b in 0..<blocks {
            kernel(src + b * blockBytes, dst + b * blockSize)
        }
    }

    /// Dequantizes whole blocks held in an array (convenience for tests and tools).
    public func dequantize(_ bytes: [UInt8], count: Int) throws(MoEError) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        var failure: MoEError?
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                do throws(MoEError) { try dequantize(src, count: count, into: dst) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }
}

/// The per-block dequantization kernels, one per type.
enum Dequantizer {
    typealias Kernel = (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void

    static func kernel(for type: GGMLType) -> Kernel {
        switch type {
        case .f32: return { s, d in d[0] = Float(bitPattern: u32(s, 0)) }
        case .f16: return { s, d in d[0] = f16(s, 0) }
        case .bf16: return { s, d in d[0] = HalfPrecision.float(fromBFloat16: u16(s, 0)) }
        case .f64: return { s, d in d[0] = Float(Double(bitPattern: UInt64(littleEndian: s.loadUnaligned(as: UInt64.self)))) }
        case .i8: return { s, d in d[0] = Float(Int8(bitPattern: s.load(as: UInt8.self))) }
        case .i16: return { s, d in d[0] = Float(Int16(bitPattern: u16(s, 0))) }
        case .i32: return { s, d in d[0] = Float(Int32(bitPattern: u32(s, 0))) }
        case .i64: return { s, d in d[0] = Float(Int64(littleEndian: s.loadUnaligned(as: Int64.self))) }
        case .q4_0: return q4_0
        case .q4_1: return q4_1
        case .q5_0: return q5_0
        case .q5_1: return q5_1
        case .q8_0: return q8_0
        case .q2_K: return q2_K
        case .q3_K: return q3_K
        case .q4_K: return q4_K
        case .q5_K: return q5_K
        case .q6_K: return q6_K
        case .q8_K: return q8_K
        case .iq4_NL: return iq4_NL
        case .iq4_XS: return iq4_XS
        case .mxfp4: return mxfp4
        default: return { _, _ in }  // unreachable: guarded by `dequantizable`
        }
    }

    @inline(__always) static func u8(_ p: UnsafeRawPointer, _ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }
    @inline(__always) static func i8(_ p: UnsafeRawPointer, _ i: Int) -> Int8 { Int8(bitPattern: u8(p, i)) }
    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ i: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt16.self))
    }
    @inline(__always) static func u32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 {
        UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
    }
    @inline(__always) static func f16(_ p: UnsafeRawPointer, _ i: Int) -> Float { HalfPrecision.float(fromHalf: u16(p, i)) }

    /// Q4_0: d (f16), 16 bytes of nibbles; low nibbles are elements 0-15, high 16-31; q - 8.
    static func q4_0(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0)
        for j in 0..<16 {
            let q = u8(s, 2 + j)
            y[j] = d * Float(Int(q & 0xF) - 8)
            y[j + 16] = d * Float(Int(q >> 4) - 8)
        }
    }

    /// Q4_1: d, m (f16), 16 bytes of nibbles; d * q + m.
    static func q4_1(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0), m = f16(s, 2)
        for j in 0..<16 {
            let q = u8(s, 4 + j)
            y[j] = d * Float(q & 0xF) + m
            y[j + 16] = d * Float(q >> 4) + m
        }
    }

    /// Q5_0: d (f16), 32 high bits (u32), 16 bytes of nibbles; q - 16.
    static func q5_0(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0)
        let qh = u32(s, 2)
        for j in 0..<16 {
            let q = u8(s, 6 + j)
            let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
            let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
            y[j] = d * Float(Int((q & 0xF) | h0) - 16)
            y[j + 16] = d * Float(Int((q >> 4) | h1) - 16)
        }
    }

    /// Q5_1: d, m (f16), 32 high bits, 16 bytes of nibbles; d * q + m.
    static func q5_1(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0), m = f16(s, 2)
        let qh = u32(s, 4)
        for j in 0..<16 {
            let q = u8(s, 8 + j)
            let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
            let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
            y[j] = d * Float((q & 0xF) | h0) + m
            y[j + 16] = d * Float((q >> 4) | h1) + m
        }
    }

    /// Q8_0: d (f16), 32 signed bytes.
    static func q8_0(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0)
        for j in 0..<32 { y[j] = d * Float(i8(s, 2 + j)) }
    }

    /// Q2_K: 16 scale/min nibble pairs, 64 bytes of 2-bit values, d and dmin (f16).
    static func q2_K(_ s: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = f16(s, 80), dmin = f16(s, 82)
        var y = out
        var scale = 0
        for half in 0..<2 {
            let q = 16 + half * 32
            for shift in stride(from: 0, to: 8, by: 2) {
                for part in 0..<2 {
                    let sc = u8(s, scale); scale += 1
                    let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 {
                        y[l] = dl * Float((u8(s, q + part * 16 + l) >> UInt8(shift)) & 3) - ml
                    }
                    y += 16
                }
            }
        }
    }

    /// Q3_K: 32 bytes of high bits, 64 bytes of 2-bit values, 12 bytes of packed 6-bit scales, d.
    static func q3_K(_ s: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = f16(s, 108)
        let a0 = u32(s, 96), a1 = u32(s, 100), tmp = u32(s, 104)
        let lowNibbles: UInt32 = 0x0F0F_0F0F, twoBits: UInt32 = 0x0303_0303
        let packed: [UInt32] = [
            (a0 & lowNibbles) | (((tmp >> 0) & twoBits) << 4),
            (a1 & lowNibbles) | (((tmp >> 2) & twoBits) << 4),
            ((a0 >> 4) & lowNibbles) | (((tmp >> 4) & twoBits) << 4),
            ((a1 >> 4) & lowNibbles) | (((tmp >> 6) & twoBits) << 4),
        ]
        func scale(_ i: Int) -> Float {
            Float(Int(UInt8(truncatingIfNeeded: packed[i / 4] >> UInt32(8 * (i % 4)))) - 32)
        }
        var y = out
        var index = 0
        var mask = 1
        for half in 0..<2 {
            let q = 32 + half * 32
            for shift in stride(from: 0, to: 8, by: 2) {
                for part in 0..<2 {
                    let dl = d * scale(index); index += 1
                    for l in 0..<16 {
                        let low = Int((u8(s, q + part * 16 + l) >> UInt8(shift)) & 3)
                        let high = Int(u8(s, part * 16 + l)) & mask != 0 ? 0 : 4
                        y[l] = dl * Float(low - high)
                    }
                    y += 16
                }
                mask <<= 1
            }
        }
    }

    /// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K block's 12 packed bytes at `at`.
    @inline(__always)
    static func scaleMinK4(_ s: UnsafeRawPointer, _ at: Int, _ j: Int) -> (Float, Float) {
        if j < 4 {
            return (Float(u8(s, at + j) & 63), Float(u8(s, at + j + 4) & 63))
        }
        let sc = (u8(s, at + j + 4) & 0xF) | ((u8(s, at + j - 4) >> 6) << 4)
        let m = (u8(s, at + j + 4) >> 4) | ((u8(s, at + j) >> 6) << 4)
        return (Float(sc), Float(m))
    }

    /// Q4_K: d, dmin (f16), 12 bytes of 6-bit scales and mins, 128 bytes of nibbles.
    static func q4_K(_ s: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0), dmin = f16(s, 2)
        var y = out
        for chunk in 0..<4 {
            let (sc1, m1) = scaleMinK4(s, 4, 2 * chunk)
            let (sc2, m2) = scaleMinK4(s, 4, 2 * chunk + 1)
            let q = 16 + chunk * 32
            for l in 0..<32 { y[l] = d * sc1 * Float(u8(s, q + l) & 0xF) - dmin * m1 }
            for l in 0..<32 { y[l + 32] = d * sc2 * Float(u8(s, q + l) >> 4) - dmin * m2 }
            y += 64
        }
    }

    /// Q5_K: d, dmin, 12 bytes of scales, 32 bytes of high bits, 128 bytes of nibbles.
    static func q5_K(_ s: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0), dmin = f16(s, 2)
        var y = out
        for chunk in 0..<4 {
            let (sc1, m1) = scaleMinK4(s, 4, 2 * chunk)
            let (sc2, m2) = scaleMinK4(s, 4, 2 * chunk + 1)
            let q = 48 + chunk * 32
            let bit1 = UInt8(1) << UInt8(2 * chunk), bit2 = UInt8(2) << UInt8(2 * chunk)
            for l in 0..<32 {
                let high: UInt8 = u8(s, 16 + l) & bit1 != 0 ? 16 : 0
                y[l] = d * sc1 * Float((u8(s, q + l) & 0xF) + high) - dmin * m1
            }
            for l in 0..<32 {
                let high: UInt8 = u8(s, 16 + l) & bit2 != 0 ? 16 : 0
                y[l + 32] = d * sc2 * Float((u8(s, q + l) >> 4) + high) - dmin * m2
            }
            y += 64
        }
    }

    /// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, d.
    static func q6_K(_ s: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = f16(s, 208)
        var y = out
        for half in 0..<2 {
            let ql = half * 64, qh = 128 + half * 32, sc = 192 + half * 8
            for l in 0..<32 {
                let group = l / 16
                let h = u8(s, qh + l)
                let q1 = Int((u8(s, ql + l) & 0xF) | ((h & 3) << 4)) - 32
                let q2 = Int((u8(s, ql + l + 32) & 0xF) | (((h >> 2) & 3) << 4)) - 32
                let q3 = Int((u8(s, ql + l) >> 4) | (((h >> 4) & 3) << 4)) - 32
                let q4 = Int((u8(s, ql + l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
                y[l] = d * Float(i8(s, sc + group)) * Float(q1)
                y[l + 32] = d * Float(i8(s, sc + group + 2)) * Float(q2)
                y[l + 64] = d * Float(i8(s, sc + group + 4)) * Float(q3)
                y[l + 96] = d * Float(i8(s, sc + group + 6)) * Float(q4)
            }
            y += 128
        }
    }

    /// Q8_K: d (f32), 256 signed bytes, 16 block sums (not needed to dequantize).
    static func q8_K(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = Float(bitPattern: u32(s, 0))
        for j in 0..<256 { y[j] = d * Float(i8(s, 4 + j)) }
    }

    /// The 16 non-linear levels of IQ4_NL and IQ4_XS.
    static let iq4Levels: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// IQ4_NL: d (f16), 16 bytes of nibbles indexing `iq4Levels`.
    static func iq4_NL(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0)
        for j in 0..<16 {
            let q = u8(s, 2 + j)
            y[j] = d * iq4Levels[Int(q & 0xF)]
            y[j + 16] = d * iq4Levels[Int(q >> 4)]
        }
    }

    /// IQ4_XS: d (f16), 2 bytes of high scale bits, 4 bytes of low scale nibbles, 128 bytes of nibbles.
    static func iq4_XS(_ s: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = f16(s, 0)
        let high = u16(s, 2)
        for block in 0..<8 {
            let low = (u8(s, 4 + block / 2) >> UInt8(4 * (block % 2))) & 0xF
            let hi = UInt8(truncatingIfNeeded: (high >> UInt16(2 * block)) & 3)
            let dl = d * Float(Int(low | (hi << 4)) - 32)
            let q = 8 + block * 16
            let y = out + block * 32
            for j in 0..<16 {
                let v = u8(s, q + j)
                y[j] = dl * iq4Levels[Int(v & 0xF)]
                y[j + 16] = dl * iq4Levels[Int(v >> 4)]
            }
        }
    }

    /// The E2M1 levels of MXFP4, doubled (the shared exponent is halved to match).
    static let mxfp4Levels: [Float] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

    /// MXFP4: one E8M0 exponent byte, 16 bytes of E2M1 nibbles.
    static func mxfp4(_ s: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let e = UInt32(u8(s, 0))
        let d = Float(bitPattern: e < 2 ? UInt32(0x0020_0000) << e : (e - 1) << 23)
        for j in 0..<16 {
            let q = u8(s, 1 + j)
            y[j] = d * mxfp4Levels[Int(q & 0xF)]
            y[j + 16] = d * mxfp4Levels[Int(q >> 4)]
        }
    }
}
