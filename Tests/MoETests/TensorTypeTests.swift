import Foundation
import Testing
@testable import MoE

@Suite("Tensor types")
struct TensorTypeTests {
    @Test("the type table agrees with gguf-py's GGML_QUANT_SIZES")
    func traitsMatchGGUFPy() throws {
        let sizes = Fixtures.json("gguf/ggml-types.json") as! [String: [String: Int]]
        for (name, entry) in sizes {
            let type = try #require(GGMLType(rawValue: UInt32(entry["id"]!)), "\(name) is unknown to swift-moe")
            #expect(type.name == name)
            #expect(type.blockSize == entry["block_size"]!, "\(name)")
            // gguf-py lists Q8_1 as 40 bytes; ggml's block_q8_1 is 2 halves + 32 bytes = 36.
            if type != .q8_1 { #expect(type.blockBytes == entry["type_size"]!, "\(name)") }
        }
        #expect(GGMLType.allKnown.count == sizes.count)
        #expect(GGMLType(rawValue: 4) == nil && GGMLType(rawValue: 31) == nil && GGMLType(rawValue: 1000) == nil)
    }

    static let dequantFixture = try! GGUFFile(path: Fixtures.path("gguf/dequant.gguf"))
    static let dequantTypes: [GGMLType] = dequantFixture.tensors.filter { $0.name.hasSuffix(".raw") }.map(\.type)

    @Test("dequantizes random blocks exactly as gguf-py does", arguments: dequantTypes)
    func dequantizationMatchesGGUFPy(type: GGMLType) throws {
        let file = Self.dequantFixture
        let raw = try file.view("\(type.name).raw")
        let expected = try file.view("\(type.name).expected").dequantized()
        let ours = try raw.dequantized()
        #expect(ours.count == expected.count)
        var worst: Float = 0
        for (a, b) in zip(ours, expected) { worst = max(worst, abs(a - b) / max(1, abs(b))) }
        #expect(worst <= 1e-6, "\(type.name): worst relative difference \(worst)")
        // Row by row through the view gives the same numbers.
        var row = [Float](repeating: 0, count: raw.rowLength)
        try row.withUnsafeMutableBufferPointer { (buffer: inout UnsafeMutableBufferPointer<Float>) throws(MoEError) in
            try raw.dequantizeRow(1, into: buffer)
        }
        #expect(row == Array(ours[raw.rowLength...]))
    }

    @Test("every type swift-moe claims to dequantize is checked against gguf-py, except Q8_K")
    func dequantCoverage() {
        let claimed = Set(GGMLType.allKnown.filter { $0.traits.dequantizable && $0.isQuantized })
        let checked = Set(Self.dequantTypes)
        #expect(claimed.subtracting(checked) == [.q8_K])  // gguf-py has no Q8_K dequantizer
    }

    @Test("Q8_0 and Q4_0 quantization gives gguf-py's bytes", arguments: ["q8_0", "q4_0", "f16", "bf16"])
    func quantizationMatchesGGUFPy(name: String) throws {
        let file = try GGUFFile(path: Fixtures.path("gguf/all-metadata.gguf"))
        let source = try file.view("\(name).source").dequantized()
        let reference = try file.view(name)
        #expect(try reference.type.quantize(source) == Array(reference.bytes))
    }

    @Test("quantization error stays within each format's bound", arguments: [
        // Measured on this data: Q8_0 0.0077, Q4_0 0.122, Q4_K 0.092, Q6_K 0.024, Q8_K 0.013 (256-wide blocks
        // with outliers), BF16 0.0017, F16 0.0002. Bounds sit just above, so a regression fails.
        (GGMLType.q8_0, Float(0.009)), (.q4_0, 0.13), (.q4_K, 0.10), (.q6_K, 0.026), (.q8_K, 0.015), (.bf16, 0.002), (.f16, 0.0003),
    ])
    func quantizationError(type: GGMLType, bound: Float) throws {
        var generator = SplitMix(seed: 42)
        let values = (0..<4096).map { _ in generator.normal() * (generator.unit() < 0.05 ? 4 : 1) }
        let back = try type.dequantize(try type.quantize(values), count: values.count)
        let rms = (values.reduce(0) { $0 + $1 * $1 } / Float(values.count)).squareRoot()
        let err = (zip(values, back).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Float(values.count)).squareRoot()
        #expect(err / rms <= bound, "\(type.name): relative RMS error \(err / rms)")
    }

    @Test("quantizers survive zeros, constants, NaN and infinity without trapping", arguments: GGMLType.quantizable)
    func quantizeHostileValues(type: GGMLType) throws {
        for fill: [Float] in [[0], [1], [-3], [.nan], [.infinity], [-.infinity, 1, .nan, 2]] {
            let values = (0..<256).map { fill[$0 % fill.count] }
            let bytes = try type.quantize(values)
            _ = try type.dequantize(bytes, count: 256)
        }
        let zeros = try type.dequantize(try type.quantize([Float](repeating: 0, count: 256)), count: 256)
        #expect(zeros.allSatisfy { $0 == 0 })
    }

    @Test("wrong sizes are errors, not traps")
    func sizeErrors() {
        #expect(throws: MoEError.self) { try GGMLType.q4_K.quantize([Float](repeating: 0, count: 100)) }
        #expect(throws: MoEError.self) { try GGMLType.q4_0.dequantize([UInt8](repeating: 0, count: 17), count: 32) }
        #expect(throws: MoEError.self) { try GGMLType.iq2_XXS.dequantize([UInt8](repeating: 0, count: 66), count: 256) }
        #expect(throws: MoEError.self) { try GGMLType.q4_1.quantize([Float](repeating: 0, count: 32)) }
    }

    @Test("every half converts to float and back unchanged")
    func halfRoundTripsExhaustively() {
        for bits in 0...UInt16.max {
            let f = HalfPrecision.float(fromHalf: bits)
            let back = HalfPrecision.half(fromFloat: f)
            if f.isNaN {
                #expect(HalfPrecision.float(fromHalf: back).isNaN)
            } else if back != bits {
                Issue.record("half \(bits) -> \(f) -> \(back)")
            }
        }
    }

    @Test("float to half rounds to nearest even, overflows to infinity, underflows to zero")
    func halfRounding() {
        #expect(HalfPrecision.half(fromFloat: 1 + 0x1p-11) == 0x3C00)  // tie, rounds down to even
        #expect(HalfPrecision.half(fromFloat: 1 + 3 * 0x1p-11) == 0x3C02)  // tie, rounds up to even
        #expect(HalfPrecision.half(fromFloat: 65520) == 0x7C00)
        #expect(HalfPrecision.half(fromFloat: 0x1p-25) == 0)  // half the smallest subnormal: ties to 0
        #expect(HalfPrecision.half(fromFloat: 0x1.8p-25) == 1)
        #expect(HalfPrecision.half(fromFloat: -0.0) == 0x8000)
    }

    @Test("bfloat16 rounds to nearest even and keeps NaN a NaN")
    func bfloat16() {
        #expect(HalfPrecision.bfloat16(fromFloat: 1) == 0x3F80)
        #expect(HalfPrecision.bfloat16(fromFloat: Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie to even
        #expect(HalfPrecision.bfloat16(fromFloat: Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(HalfPrecision.float(fromBFloat16: HalfPrecision.bfloat16(fromFloat: .nan)).isNaN)
    }
}

/// A small deterministic generator for test data (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func normal() -> Float {
        let u = max(unit(), 1e-7), v = unit()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}
