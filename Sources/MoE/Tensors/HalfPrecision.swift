/// IEEE half precision and bfloat16 conversions, written out bit by bit so they behave the same
/// on every platform (Swift's `Float16` is not available on macOS x86-64).
public enum HalfPrecision {
    /// The `Float` an IEEE binary16 bit pattern stands for (exact).
    @inline(__always)
    public static func float(fromHalf h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// The nearest IEEE binary16 to `f` (round to nearest, ties to even; overflow gives infinity).
    @inline(__always)
    public static func half(fromFloat f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x200 | UInt16(mantissa >> 13) : 0)
        }
        let e = exponent - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - e)
            var result = mantissa >> shift
            let rest = mantissa & ((1 << shift) - 1)
            let halfway: UInt32 = 1 << (shift - 1)
            if rest > halfway || (rest == halfway && result & 1 == 1) { result += 1 }
            return sign | UInt16(result)
        }
        var result = (UInt32(e) << 10) | (mantissa >> 13)
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && result & 1 == 1) { result += 1 }
        return sign | UInt16(result)
    }

    /// The `Float` a bfloat16 bit pattern stands for (exact).
    @inline(__always)
    public static func float(fromBFloat16 b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// The nearest bfloat16 to `f` (ties to even; NaN stays a quiet NaN), as ggml rounds it.
    @inline(__always)
    public static func bfloat16(fromFloat f: Float) -> UInt16 {
        let bits = f.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 {
            return UInt16(truncatingIfNeeded: (bits >> 16) | 64)
        }
        return UInt16(truncatingIfNeeded: (bits &+ (0x7FFF &+ ((bits >> 16) & 1))) >> 16)
    }
}
