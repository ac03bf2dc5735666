#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Rotary position embedding, as ggml's `rope_ext` computes it: frequencies `base^(-2i/d)`
/// built by repeated multiplication, optional linear or YaRN scaling, and two pairings of the
/// rotated dimensions.
public struct RoPE: Sendable {
    /// Which dimensions form the rotated pairs.
    public enum Style: Sendable {
        /// Adjacent pairs `(x[2i], x[2i+1])` (Llama, Mixtral).
        case normal
        /// Halves `(x[i], x[i + d/2])` (GPT-NeoX, Qwen, OLMoE).
        case neox
    }

    let style: Style
    let dimensions: Int
    let base: Float
    let freqScale: Float
    let extFactor: Float
    let attnFactor: Float
    let correction: (Float, Float)

    /// A rotation over the first `dimensions` of each head.
    init(style: Style, dimensions: Int, base: Float, scaling: ModelConfig.RoPEScaling) {
        self.style = style
        self.dimensions = dimensions
        self.base = base
        switch scaling {
        case .none:
            freqScale = 1; extFactor = 0; attnFactor = 1; correction = (0, 0)
        case .linear(let factor):
            freqScale = Float(1 / factor); extFactor = 0; attnFactor = 1; correction = (0, 0)
        case .yarn(let factor, let originalContext):
            freqScale = Float(1 / factor); extFactor = 1; attnFactor = 1
            // The dimensions where the wavelength crosses beta_fast = 32 and beta_slow = 1 rotations.
            func corrDim(_ rotations: Float) -> Float {
                Float(dimensions) * logf(Float(originalContext) / (rotations * 2 * .pi)) / (2 * logf(base))
            }
            correction = (max(0, floorf(corrDim(32))), min(Float(dimensions - 1), ceilf(corrDim(1))))
        }
    }

    /// Floats `fillTable` writes: a cosine and a sine for each rotated pair.
    var tableCount: Int { dimensions }

    /// The cosine and sine (times the attention factor) of every rotated pair's angle at
    /// `position`, interleaved, into `table` (`tableCount` floats). One table serves every head
    /// of every layer at that position: each layer's queries and keys used to compute the same
    /// 64 cosines and sines twice (about 2.7 µs of a layer's serial part for OLMoE).
    func fillTable(_ table: UnsafeMutablePointer<Float>, position: Int) {
        let thetaScale = powf(base, -2 / Float(dimensions))
        var theta = Float(position)
        for i0 in stride(from: 0, to: dimensions, by: 2) {
            let (c, s) = cosSin(theta, i0)
            table[i0] = c
            table[i0 + 1] = s
            theta *= thetaScale
        }
    }

    /// Rotates `heads` heads of `headSize` values each, laid out one after another, by the
    /// angles of `table` (from `fillTable` for the position).
    func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headSize: Int, table: UnsafePointer<Float>) {
        let pairs = dimensions / 2
        for h in 0..<heads {
            let v = x + h * headSize
            for i in 0..<pairs {
                let c = table[2 * i], s = table[2 * i + 1]
                let (a, b) = style == .normal ? (2 * i, 2 * i + 1) : (i, i + pairs)
                let x0 = v[a], x1 = v[b]
                v[a] = x0 * c - x1 * s
                v[b] = x0 * s + x1 * c
            }
        }
    }

    private func cosSin(_ thetaExtrap: Float, _ i0: Int) -> (Float, Float) {
        let thetaInterp = freqScale * thetaExtrap
        var theta = thetaInterp
        var mscale = attnFactor
        if extFactor != 0 {
            let y = (Float(i0) / 2 - correction.0) / max(0.001, correction.1 - correction.0)
            let rampMix = (1 - min(1, max(0, y))) * extFactor
            theta = thetaInterp * (1 - rampMix) + thetaExtrap * rampMix
            mscale *= 1 + 0.1 * logf(1 / freqScale)
        }
        return (cosf(theta) * mscale, sinf(theta) * mscale)
    }
}
