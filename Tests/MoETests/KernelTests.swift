import Foundation
import Testing
import MoEKernels
@testable import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Each SIMD kernel against its scalar twin, on random data and odd block counts.
@Suite("Kernels", .serialized)
struct KernelTests {
    static let blockCounts = [1, 3, 7, 64, 129]

    func randomRow(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix(seed: seed)
        return (0..<n).map { _ in g.normal() }
    }

    func quantizedActivations(_ x: [Float]) -> [moek_block_q8_0] {
        var blocks = [moek_block_q8_0](repeating: moek_block_q8_0(), count: x.count / 32)
        moek_quantize_row_q8_0(x, &blocks, x.count)
        return blocks
    }

    /// Runs `body` under every kernel variant this thread can select: as detected, the 256- and
    /// 128-bit AVX2 forms (on AVX2 machines, whichever the CPU would pick), on CPUs with both
    /// AVX-VNNI and AVX-512 VNNI each alone (the EVEX decode kernels; the VEX tiles where the
    /// 512-bit ones would take over), NEON without the dot-product extension (on arm64 CPUs that
    /// have it), and scalar.
    func forEachVariant(_ body: (String) throws -> Void) rethrows {
        var variants: [(label: String, forced: UInt32, mask: UInt32)] = [("native", 0, ~0)]
        let features = moek_cpu_features()
        let vnni = MOEK_CPU_AVX_VNNI.rawValue | MOEK_CPU_AVX512_VNNI.rawValue
        if features & MOEK_CPU_AVX2_FMA.rawValue != 0 {
            variants += [("avx2-256", 0, ~(MOEK_CPU_AVX2_HALF_WIDTH.rawValue | vnni)), ("avx2-128", MOEK_CPU_AVX2_HALF_WIDTH.rawValue, ~0)]
        }
        if features & MOEK_CPU_AVX_VNNI.rawValue != 0 && features & MOEK_CPU_AVX512_VNNI.rawValue != 0 {
            variants.append(("avx512-vnni", 0, ~(MOEK_CPU_AVX2_HALF_WIDTH.rawValue | MOEK_CPU_AVX_VNNI.rawValue)))
            variants.append(("avx-vnni", 0, ~(MOEK_CPU_AVX2_HALF_WIDTH.rawValue | MOEK_CPU_AVX512_VNNI.rawValue)))
        }
        if moek_cpu_features() & MOEK_CPU_NEON_DOTPROD.rawValue != 0 {
            variants.append(("neon-base", 0, ~MOEK_CPU_NEON_DOTPROD.rawValue))
        }
        variants.append(("scalar", 0, 0))
        for v in variants {
            let previousForced = moek_force_features(v.forced), previousMask = moek_set_feature_mask(v.mask)
            defer { moek_set_feature_mask(previousMask); moek_force_features(previousForced) }
            if v.label == "avx2-128" { #expect(moek_cpu_features() & MOEK_CPU_AVX2_HALF_WIDTH.rawValue != 0) }
            if v.label == "avx2-256" { #expect(moek_cpu_features() & (MOEK_CPU_AVX2_HALF_WIDTH.rawValue | vnni) == 0) }
            if v.label == "avx512-vnni" { #expect(moek_cpu_features() & vnni == MOEK_CPU_AVX512_VNNI.rawValue) }
            if v.label == "avx-vnni" { #expect(moek_cpu_features() & vnni == MOEK_CPU_AVX_VNNI.rawValue) }
            try body(v.label)
        }
    }

    @Test("the machine's SIMD features are detected and can be masked off")
    func featureMask() {
        let all = moek_cpu_features()
        let previous = moek_set_feature_mask(0)
        #expect(moek_cpu_features() == 0)
        moek_set_feature_mask(previous)
        #expect(moek_cpu_features() == all)
        #if arch(x86_64) || arch(arm64)
        #expect(all != 0, "this CPU has no SIMD path in use; the speed numbers would be scalar")
        #endif
    }

    @Test("the process-wide feature mask reaches threads that never set one, and lifting it restores them")
    func processFeatureMask() throws {
        // A bit whose masking changes no result elsewhere in the process while other suites run:
        // the half-width preference (forced on the probing thread, detected only on Zen 1), or
        // the dot-product extension on arm64 (the baseline NEON kernels give the same integers).
        let bit = moek_cpu_features() & MOEK_CPU_AVX2_FMA.rawValue != 0 ? MOEK_CPU_AVX2_HALF_WIDTH.rawValue
            : moek_cpu_features() & MOEK_CPU_NEON_DOTPROD.rawValue
        try #require(bit != 0, "no maskable feature on this CPU")
        /// What a fresh thread (with the half-width bit forced) sees.
        func seenByNewThread() -> UInt32 {
            final class Box: @unchecked Sendable { var value: UInt32 = 0 }
            let box = Box(), done = DispatchSemaphore(value: 0)
            Thread {
                moek_force_features(MOEK_CPU_AVX2_HALF_WIDTH.rawValue)
                box.value = moek_cpu_features()
                done.signal()
            }.start()
            done.wait()
            return box.value
        }
        #expect(seenByNewThread() & bit == bit)
        let previous = moek_set_process_feature_mask(~bit)
        let masked = seenByNewThread()
        moek_set_process_feature_mask(previous)
        #expect(masked & bit == 0 && masked != 0)
        #expect(seenByNewThread() & bit == bit)
    }

    @Test("activation quantization: SIMD equals scalar, and both follow ggml's x86 rule", arguments: blockCounts)
    func quantizeRow(blocks: Int) throws {
        // Values that land exactly on .5 after scaling exercise the ties-to-even rule.
        let halves: [Float] = [2.5, -2.5, 0.5, -0.5, 126.5, 1.5].flatMap { [Float](repeating: $0, count: 5) } + [127, 0]
        let row: [Float] = Array((halves + randomRow(blocks * 32, seed: UInt64(blocks))).prefix(blocks * 32))
        let n = row.count
        var scalar = [moek_block_q8_0](repeating: moek_block_q8_0(), count: n / 32)
        moek_quantize_row_q8_0_scalar(row, &scalar, n)
        let simd = quantizedActivations(row)
        for b in 0..<(n / 32) {
            #expect(withUnsafeBytes(of: simd[b]) { Array($0) } == withUnsafeBytes(of: scalar[b]) { Array($0) })
            let block = Array(row[(32 * b)..<(32 * b + 32)])
            let amax = block.map(abs).max()!
            let id: Float = amax != 0 ? 127 / amax : 0
            let expected = block.map { Int8(($0 * id).rounded(.toNearestOrEven)) }
            #expect(withUnsafeBytes(of: scalar[b].qs) { Array($0.bindMemory(to: Int8.self)) } == expected)
            #expect(scalar[b].d == HalfPrecision.half(fromFloat: amax / 127))
        }
    }

    @Test("Q8_K activation quantization: SIMD equals scalar bit for bit, and the scalar follows ggml's reference rule")
    func quantizeRowQ8K() throws {
        // Block 0: random. Block 1: its largest magnitude twice with opposite signs (the first one
        // sets the sign of the scale) and values that land on .5. Block 2: zeros. Block 3: the
        // largest magnitude last, and a NaN (ignored by the search, as by ggml's `>`).
        var row = randomRow(4 * 256, seed: 77)
        row[256 + 10] = -3; row[256 + 13] = 3
        for i in 0..<8 { row[256 + 20 + i] = 3 * Float(2 * i + 1) / 254 }
        for i in 512..<768 { row[i] = 0 }
        row[1023] = 9; row[800] = .nan
        var scalar = [moek_block_q8_K](repeating: moek_block_q8_K(), count: 4)
        moek_quantize_row_q8_K_scalar(row, &scalar, row.count)
        forEachVariant { variant in
            var simd = [moek_block_q8_K](repeating: moek_block_q8_K(), count: 4)
            moek_quantize_row_q8_K(row, &simd, row.count)
            for b in 0..<4 {
                #expect(withUnsafeBytes(of: simd[b]) { Array($0) } == withUnsafeBytes(of: scalar[b]) { Array($0) }, "\(variant) block \(b)")
            }
        }
        for b in [0, 1] {
            let block = Array(row[(256 * b)..<(256 * b + 256)])
            let max = block.max { abs($0) < abs($1) }!  // the first of equal magnitudes
            let iscale = -127 / max
            let expected = block.map { Int8(min(127, ($0 * iscale).rounded(.toNearestOrEven))) }
            let qs = withUnsafeBytes(of: scalar[b].qs) { Array($0.bindMemory(to: Int8.self)) }
            #expect(qs == expected)
            let bsums = withUnsafeBytes(of: scalar[b].bsums) { Array($0.bindMemory(to: Int16.self)) }
            #expect(bsums == (0..<16).map { j in Int16(qs[(16 * j)..<(16 * j + 16)].reduce(0) { $0 + Int($1) }) })
            #expect(scalar[b].d == 1 / iscale)
        }
        #expect(scalar[1].qs.10 == -127 && scalar[1].qs.13 == 127)  // the scale takes -3's sign
        #expect(withUnsafeBytes(of: scalar[2]) { $0.allSatisfy { $0 == 0 } })
        #expect(scalar[3].qs.255 == -127)
    }

    @Test("Q8_0 and Q4_0 dot products equal the scalar path bit for bit and match dequantized floats", arguments: blockCounts)
    func quantizedDots(blocks: Int) throws {
        let n = blocks * 32
        let w = randomRow(n, seed: 1000 + UInt64(blocks)), x = randomRow(n, seed: 2000 + UInt64(blocks))
        let xq = quantizedActivations(x)
        let xBack = try GGMLType.q8_0.dequantize(try GGMLType.q8_0.quantize(x), count: n)
        for type in [GGMLType.q8_0, .q4_0] {
            let wq = try type.quantize(w)
            let wBack = try type.dequantize(wq, count: n)
            let reference = zip(wBack, xBack).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            let (scalar, simd) = wq.withUnsafeBytes { p in
                type == .q8_0
                    ? (moek_vec_dot_q8_0_q8_0_scalar(p.baseAddress, xq, n), moek_vec_dot_q8_0_q8_0(p.baseAddress, xq, n))
                    : (moek_vec_dot_q4_0_q8_0_scalar(p.baseAddress, xq, n), moek_vec_dot_q4_0_q8_0(p.baseAddress, xq, n))
            }
            let scale = max(1, abs(reference))
            #expect(simd.bitPattern == scalar.bitPattern, "\(type.name) simd \(simd) scalar \(scalar)")
            #expect(abs(scalar - reference) <= 1e-4 * scale, "\(type.name) scalar \(scalar) reference \(reference)")
        }
    }

    @Test("4-row kernels (VNNI, 256-bit, 128-bit, scalar) and the Q4_0 8-row entry point equal the scalar single-row dot products bit for bit, Q8_0 bytes -128 and 127 included", arguments: blockCounts)
    func fourRows(blocks: Int) throws {
        let n = blocks * 32
        let x = randomRow(n, seed: 77 + UInt64(blocks))
        let xq = quantizedActivations(x)
        var offsets = [Int32](repeating: 0, count: blocks)
        moek_q8_0_offsets(xq, n, &offsets)
        #expect(offsets == xq.map { b in withUnsafeBytes(of: b.qs) { 8 * $0.bindMemory(to: Int8.self).reduce(Int32(0)) { $0 + Int32($1) } } })
        for type in [GGMLType.q4_0, .q8_0] {
            let rows = (0..<4).flatMap { randomRow(n, seed: 500 + UInt64($0)) }
            var w = try type.quantize(rows)
            if type == .q8_0 { Self.addExtremeQ8_0Weights(&w) }
            let stride = n / 32 * type.blockBytes
            let scalar: [Float] = w.withUnsafeBytes { p in
                (0..<4).map { k in
                    type == .q4_0 ? moek_vec_dot_q4_0_q8_0_scalar(p.baseAddress! + k * stride, xq, n) : moek_vec_dot_q8_0_q8_0_scalar(p.baseAddress! + k * stride, xq, n)
                }
            }
            try forEachVariant { variant in
                var four = [Float](repeating: 0, count: 4)
                let singles: [Float] = w.withUnsafeBytes { p in
                    if type == .q4_0 { moek_vec_dot4_q4_0_q8_0(p.baseAddress, stride, xq, offsets, n, &four) } else { moek_vec_dot4_q8_0_q8_0(p.baseAddress, stride, xq, n, &four) }
                    return (0..<4).map { k in
                        type == .q4_0 ? moek_vec_dot_q4_0_q8_0(p.baseAddress! + k * stride, xq, n) : moek_vec_dot_q8_0_q8_0(p.baseAddress! + k * stride, xq, n)
                    }
                }
                #expect(four.map(\.bitPattern) == scalar.map(\.bitPattern), "\(type.name) \(variant) four rows")
                if type == .q4_0 {  // the eight-row entry point: eight distinct rows
                    var eight = [Float](repeating: 0, count: 8)
                    let w8 = try GGMLType.q4_0.quantize((0..<8).flatMap { randomRow(n, seed: 600 + UInt64($0)) })
                    let expected: [Float] = w8.withUnsafeBytes { p in
                        moek_vec_dot8_q4_0_q8_0(p.baseAddress, stride, xq, offsets, n, &eight)
                        return (0..<8).map { k in moek_vec_dot_q4_0_q8_0_scalar(p.baseAddress! + k * stride, xq, n) }
                    }
                    #expect(eight.map(\.bitPattern) == expected.map(\.bitPattern), "q4_0 \(variant) eight rows")
                }
                #expect(singles.map(\.bitPattern) == scalar.map(\.bitPattern), "\(type.name) \(variant) single rows")
            }
        }
    }

    @Test("Q4_K, Q5_K and Q6_K AVX2 dot products equal their scalar twins bit for bit", arguments: [1, 3, 8])
    func kQuants(blocks: Int) throws {
        let n = blocks * 256
        let x = randomRow(n, seed: 900 + UInt64(blocks))
        var xq = [moek_block_q8_K](repeating: moek_block_q8_K(), count: blocks)
        moek_quantize_row_q8_K(x, &xq, n)
        // Quantized real-looking rows, and rows of random bits (every packed field pattern).
        let dequantFixture = try GGUFFile(path: Fixtures.path("gguf/dequant.gguf"))
        for type in [GGMLType.q4_K, .q5_K, .q6_K] {
            var g = SplitMix(seed: UInt64(blocks))
            let random = (0..<(n / 256 * type.blockBytes)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let fixtureBlocks = Array(try dequantFixture.view("\(type.name).raw").bytes.prefix(type.blockBytes))
            var bitsRow = random
            for b in 0..<blocks {  // sane scales from the fixture's first block
                let at = b * type.blockBytes
                if type != .q6_K { bitsRow.replaceSubrange(at..<(at + 4), with: fixtureBlocks[0..<4]) }
                else { bitsRow.replaceSubrange((at + 208)..<(at + 210), with: fixtureBlocks[208..<210]) }
            }
            // Q5_K has no quantizer here: its rows are random bits only.
            let rows = type == .q5_K ? [bitsRow] : [try type.quantize(randomRow(n, seed: 4)), bitsRow]
            for w in rows {
                let (simd, scalar) = w.withUnsafeBytes { p in
                    switch type {
                    case .q4_K: (moek_vec_dot_q4_K_q8_K(p.baseAddress, xq, n), moek_vec_dot_q4_K_q8_K_scalar(p.baseAddress, xq, n))
                    case .q5_K: (moek_vec_dot_q5_K_q8_K(p.baseAddress, xq, n), moek_vec_dot_q5_K_q8_K_scalar(p.baseAddress, xq, n))
                    default: (moek_vec_dot_q6_K_q8_K(p.baseAddress, xq, n), moek_vec_dot_q6_K_q8_K_scalar(p.baseAddress, xq, n))
                    }
                }
                #expect(simd == scalar, "\(type.name): \(simd) vs \(scalar)")
                // And both agree with dequantized weights · dequantized activations.
                let wf = try type.dequantize(w, count: n)
                let xf = xq.flatMap { block in withUnsafeBytes(of: block.qs) { $0.bindMemory(to: Int8.self).map { Float($0) * block.d } } }
                let reference = zip(wf, xf).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                #expect(abs(scalar - reference) <= 1e-3 * max(1, abs(reference)), "\(type.name): \(scalar) vs \(reference)")
            }
        }
    }

    @Test("four-row Q4_K, Q5_K and Q6_K kernels equal the scalar single-row products bit for bit", arguments: [1, 3, 8])
    func kQuantFourRows(blocks: Int) throws {
        let n = blocks * 256
        let x = randomRow(n, seed: 950 + UInt64(blocks))
        var xq = [moek_block_q8_K](repeating: moek_block_q8_K(), count: blocks)
        moek_quantize_row_q8_K(x, &xq, n)
        let fixture = try GGUFFile(path: Fixtures.path("gguf/dequant.gguf"))
        for type in [GGMLType.q4_K, .q5_K, .q6_K] {
            // Four rows of random bits with sane scales taken from the fixture's first block (every
            // packed scale and level pattern), plus quantized rows where a quantizer exists.
            let first = Array(try fixture.view("\(type.name).raw").bytes.prefix(type.blockBytes))
            var g = SplitMix(seed: 31 * UInt64(blocks))
            var w: [UInt8] = []
            for row in 0..<4 {
                if row == 3, type != .q5_K { w += try type.quantize(randomRow(n, seed: 60 + UInt64(blocks))); continue }
                var bits = (0..<(blocks * type.blockBytes)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                for b in 0..<blocks {
                    let at = b * type.blockBytes
                    if type != .q6_K { bits.replaceSubrange(at..<(at + 4), with: first[0..<4]) }
                    else { bits.replaceSubrange((at + 208)..<(at + 210), with: first[208..<210]) }
                }
                w += bits
            }
            let stride = blocks * type.blockBytes
            let scalar: [Float] = w.withUnsafeBytes { p in
                (0..<4).map { k in
                    let row = p.baseAddress! + k * stride
                    switch type {
                    case .q4_K: return moek_vec_dot_q4_K_q8_K_scalar(row, xq, n)
                    case .q5_K: return moek_vec_dot_q5_K_q8_K_scalar(row, xq, n)
                    default: return moek_vec_dot_q6_K_q8_K_scalar(row, xq, n)
                    }
                }
            }
            forEachVariant { variant in
                var four = [Float](repeating: 0, count: 4)
                w.withUnsafeBytes { p in
                    switch type {
                    case .q4_K: moek_vec_dot4_q4_K_q8_K(p.baseAddress, stride, xq, n, &four)
                    case .q5_K: moek_vec_dot4_q5_K_q8_K(p.baseAddress, stride, xq, n, &four)
                    default: moek_vec_dot4_q6_K_q8_K(p.baseAddress, stride, xq, n, &four)
                    }
                }
                #expect(four.map(\.bitPattern) == scalar.map(\.bitPattern), "\(type.name) \(variant): \(four) vs \(scalar)")
            }
        }
    }

    /// (type, inputs) cases for the matrix-matrix kernels: odd block counts, more blocks than one
    /// unpacked segment (64 blocks; 8 super-blocks for the K-quants), and inputs that are whole
    /// Q8_K blocks for the K-quants.
    static let gemmCases: [(String, Int)] = [
        ("q4_0", 32), ("q4_0", 96), ("q4_0", 65 * 32), ("q4_0", 129 * 32), ("q8_0", 32), ("q8_0", 65 * 32), ("q8_0", 129 * 32),
        ("q4_K", 256), ("q4_K", 768), ("q4_K", 9 * 256), ("q5_K", 512), ("q5_K", 9 * 256), ("q6_K", 512), ("q6_K", 9 * 256),
        ("f16", 33), ("f32", 33), ("bf16", 64),
    ]

    @Test("matrix-matrix kernels equal the one-token dot products bit for bit, SIMD and scalar, for any row/token subset",
          arguments: gemmCases)
    func matrixMatrix(typeName: String, inputs n: Int) throws {
        let type = try #require(GGMLType(name: typeName))
        // 19 rows in two ranges, 0..<6 and 6..<19: one eight-row group (the Q4_0 decode kernel per
        // token), two four-row groups and three single rows; 1-3 tokens (the small-batch paths;
        // half-width CPUs switch to the interleaved Q6_K tiles at 2, Q4_0/Q4_K/Q5_K at 3, VNNI CPUs
        // to their Q4_0 tiles at 3), 4 and 5 (AVX-512 VNNI: the few-token decode kernels' four-token
        // pass, then one more token), 6 and 11 (four-token passes with 2 and 3 left over, 11 > one
        // 8-token tile; AVX-512 VNNI CPUs take the tiles from 5 for Q8_0, Q4_K and Q5_K, from 6 for
        // Q4_0 and Q6_K) and 17 (where half-width CPUs switch to the Q8_0 tiles).
        for tokens in [1, 2, 3, 4, 5, 6, 11, 17] { try matrixMatrix(type: type, typeName: typeName, inputs: n, rows: 19, tokens: tokens) }
        // 0..<6 and 6..<43: a sixteen-row group of the 512-bit tiles before the 256-bit ones' rows
        // (the K-quant tiles start at 2 or 3 tokens; on AVX-512 VNNI CPUs at 5, Q6_K's at 6).
        if [.q4_0, .q8_0, .q4_K, .q5_K, .q6_K].contains(type) {
            for tokens in [2, 3, 6, 11, 17] { try matrixMatrix(type: type, typeName: typeName, inputs: n, rows: 43, tokens: tokens) }
        }
    }

    /// `rows` weight rows of `n` inputs: quantized random values; for the K-quants every other row
    /// is random bits (every level and scale pattern, Q6_K scales down to -128) with sane
    /// super-block scales from the dequantization fixture, and Q5_K, which has no quantizer here,
    /// is random bits only.
    func matrixRows(type: GGMLType, inputs n: Int, rows: Int) throws -> [UInt8] {
        guard [.q4_K, .q5_K, .q6_K].contains(type) else {
            var w = try type.quantize((0..<rows).flatMap { randomRow(n, seed: 300 + UInt64($0)) })
            if type == .q8_0 { Self.addExtremeQ8_0Weights(&w) }
            return w
        }
        let fixture = try GGUFFile(path: Fixtures.path("gguf/dequant.gguf"))
        let first = Array(try fixture.view("\(type.name).raw").bytes.prefix(type.blockBytes))
        var g = SplitMix(seed: 41 + UInt64(n))
        var w: [UInt8] = []
        for row in 0..<rows {
            if row % 2 == 1, type != .q5_K { w += try type.quantize(randomRow(n, seed: 300 + UInt64(row))); continue }
            var bits = (0..<(n / 256 * type.blockBytes)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            for at in stride(from: 0, to: bits.count, by: type.blockBytes) {
                if type != .q6_K { bits.replaceSubrange(at..<(at + 4), with: first[0..<4]) }
                else { bits.replaceSubrange((at + 208)..<(at + 210), with: first[208..<210]) }
            }
            w += bits
        }
        return w
    }

    /// Sets a few weights of every Q8_0 block to -128 and 127, the ends of int8 that no quantizer
    /// here produces but a file may hold (kernels that shift or negate bytes must handle both).
    static func addExtremeQ8_0Weights(_ w: inout [UInt8]) {
        for at in stride(from: 0, to: w.count, by: 34) {
            w[at + 2] = 0x80
            w[at + 2 + 17] = 0x80
            w[at + 2 + 31] = 0x80
            w[at + 2 + 9] = 0x7F
        }
    }

    /// Q5_K's vpdpbusd tiles scale a sub-block's level sums every two groups of weights, as
    /// sixteen products of level 31 and activation ±127 (62992) would overflow the int16 the
    /// scales multiply; the other tests' random rows never come near that.
    @Test("Q5_K tiles keep the largest level sums exact: every level 31 against activations of ±127")
    func q5KLargestSums() throws {
        let n = 512
        let fixture = try GGUFFile(path: Fixtures.path("gguf/dequant.gguf"))
        let scales = Array(try fixture.view("\(GGMLType.q5_K.name).raw").bytes.prefix(4))  // d and dmin
        // Sub-block scales and minimums 63, every level's four low bits and fifth bit set.
        let block = scales + [UInt8](repeating: 0xFF, count: GGMLType.q5_K.blockBytes - 4)
        let w = [[UInt8]](repeating: block, count: 43 * n / 256).flatMap { $0 }
        let inputs = (0..<13).map { [Float](repeating: $0 % 2 == 0 ? 1 : -1, count: n) }
        for tokens in [3, 4, 5, 8, 11] {
            try matrixMatrix(type: .q5_K, typeName: "q5_K (largest sums)", inputs: n, rows: 43, tokens: tokens, weights: w, activations: inputs)
        }
    }

    func matrixMatrix(type: GGMLType, typeName: String, inputs n: Int, rows: Int, tokens: Int,
                      weights: [UInt8]? = nil, activations: [[Float]]? = nil) throws {
        let storedRows = 13
        let w = try weights ?? matrixRows(type: type, inputs: n, rows: rows)
        let batch = ActivationBatch(rows: storedRows, width: n)
        let inputs = activations ?? (0..<storedRows).map { randomRow(n, seed: 700 + UInt64($0)) }
        let format = Linear.format(for: type)
        for (t, x) in inputs.enumerated() { x.withUnsafeBufferPointer { batch.prepare(t, $0.baseAddress!, count: n, for: format) } }
        // Tokens read stored rows in a scrambled order and write scattered output rows.
        let xIndex: [Int32] = (0..<tokens).map { Int32(($0 * 5 + 3) % storedRows) }
        let yIndex: [Int32] = (0..<tokens).map { Int32(tokens - 1 - $0) }
        try forEachVariant { variant in
            try w.withUnsafeBytes { p in
                let linear = Linear(base: p.baseAddress!, type: type, inputs: n, outputs: rows)
                var y = [Float](repeating: .nan, count: tokens * rows)
                y.withUnsafeMutableBufferPointer { out in
                    xIndex.withUnsafeBufferPointer { xi in
                        yIndex.withUnsafeBufferPointer { yi in
                            // Two row ranges, as two pool chunks would split them.
                            linear.gemm(rows: 0..<6, batch, tokens: tokens, xIndex: xi.baseAddress, out.baseAddress!, yStride: rows, yIndex: yi.baseAddress)
                            linear.gemm(rows: 6..<rows, batch, tokens: tokens, xIndex: xi.baseAddress, out.baseAddress!, yStride: rows, yIndex: yi.baseAddress)
                        }
                    }
                }
                let single = ActivationBuffer(capacity: n)
                for t in 0..<tokens {
                    try inputs[Int(xIndex[t])].withUnsafeBufferPointer { x in
                        single.prepare(x.baseAddress!, count: n, for: format)
                        for r in 0..<rows {
                            let expected = linear.dot(r, single), got = y[Int(yIndex[t]) * rows + r]
                            try #require(got.bitPattern == expected.bitPattern,
                                         "\(typeName) n \(n) tokens \(tokens) \(variant) token \(t) row \(r): \(got) vs \(expected)")
                        }
                    }
                }
            }
        }
    }

    @Test("F16C rounding to half and the half multiply-add equal their scalar twins bit for bit")
    func halfKernels() {
        var g = SplitMix(seed: 11)
        // Normal values, tiny values that become subnormal halves, and values past the half range.
        let x: [Float] = (0..<4099).map { i in
            let v = g.normal()
            switch i % 4 { case 0: return v; case 1: return v * 1e-6; case 2: return v * 7e4; default: return v * 0.01 }
        }
        var simd = [UInt16](repeating: 0, count: x.count), scalar = simd
        moek_f32_to_f16(x, &simd, x.count)
        moek_f32_to_f16_scalar(x, &scalar, x.count)
        #expect(simd == scalar)
        #expect(scalar == x.map { HalfPrecision.half(fromFloat: $0) })
        let halves = (0..<1001).map { _ in HalfPrecision.half(fromFloat: g.normal()) }
        var y1 = (0..<1001).map { _ in g.normal() }
        var y2 = y1
        moek_vec_mad_f16(&y1, 0.37, halves, halves.count)
        moek_vec_mad_f16_scalar(&y2, 0.37, halves, halves.count)
        #expect(y1 == y2)
    }

    @Test("F32 dot product matches the scalar path at odd lengths", arguments: [1, 7, 8, 9, 31, 1000])
    func floatDot(n: Int) {
        let a = randomRow(n, seed: 5), b = randomRow(n, seed: 6)
        let simd = moek_vec_dot_f32(a, b, n), scalar = moek_vec_dot_f32_scalar(a, b, n)
        #expect(abs(simd - scalar) <= 1e-4 * max(1, abs(scalar)))
    }

    @Test("F16 dot product matches the scalar path at odd lengths", arguments: [1, 7, 8, 9, 31, 1000])
    func halfDot(n: Int) {
        let a = randomRow(n, seed: 15).map { HalfPrecision.half(fromFloat: $0) }, b = randomRow(n, seed: 16).map { HalfPrecision.half(fromFloat: $0) }
        let simd = moek_vec_dot_f16(a, b, n), scalar = moek_vec_dot_f16_scalar(a, b, n)
        #expect(abs(simd - scalar) <= 1e-4 * max(1, abs(scalar)))
    }

    @Test("F16 dot products and value sums over several rows equal one call per row, bit for bit",
          arguments: [(1, 1), (7, 3), (8, 4), (16, 17), (32, 12), (130, 9), (128, 67)])
    func halfRows(n: Int, rows: Int) {
        let stride = n + 3  // rows apart by more than their length, as heads in a KV cache row
        let cache = randomRow(stride * rows, seed: 25).map { HalfPrecision.half(fromFloat: $0) }
        let q = randomRow(n, seed: 26).map { HalfPrecision.half(fromFloat: $0) }
        let w = randomRow(rows, seed: 27)
        let start = randomRow(n, seed: 28)
        forEachVariant { label in
            var scores = [Float](repeating: 0, count: rows)
            moek_vec_dot_f16_rows(cache, stride, q, n, rows, 0.125, &scores)
            var y = start, expected = start
            moek_vec_mad_f16_rows(&y, w, cache, stride, n, rows)
            for p in 0..<rows {
                cache.withUnsafeBufferPointer { c in
                    #expect(scores[p] == moek_vec_dot_f16(c.baseAddress! + p * stride, q, n) * 0.125, "\(label) row \(p)")
                    moek_vec_mad_f16(&expected, w[p], c.baseAddress! + p * stride, n)
                }
            }
            #expect(y == expected, "\(label)")
        }
    }

    @Test("the softmax's exp: every path gives the scalar twin's bits, within two ulps of libm, 0 below -87 and for NaN")
    func expNonpositive() {
        var g = SplitMix(seed: 43)
        var x = (0..<2003).map { i -> Float in i % 5 == 0 ? -Float.random(in: 0...0.5, using: &g) : -Float.random(in: 0...90, using: &g) }
        x[0] = 0; x[1] = -87; x[2] = -87.0001; x[3] = -.infinity; x[4] = .nan; x[5] = -1e-30
        var reference = x
        moek_vec_exp_nonpositive_scalar(&reference, x.count)
        for (v, e) in zip(x, reference) where v >= -87 {
            let exact = Float(exp(Double(v)))
            #expect(abs(e - exact) <= 2 * exact.ulp, "exp(\(v)) = \(e), libm \(exact)")
        }
        #expect(reference[0] == 1 && reference[2] == 0 && reference[3] == 0 && reference[4] == 0 && reference[5] == 1)
        forEachVariant { label in
            var got = x
            moek_vec_exp_nonpositive(&got, x.count)
            #expect(got.map(\.bitPattern) == reference.map(\.bitPattern), "\(label)")
        }
    }

    @Test("SwiGLU's product: every path gives the scalar twin's bits, within four ulps of x / (1 + e^-x) · u, NaN kept, no overflow",
          arguments: [1, 7, 8, 9, 1024, 1027])
    func swiglu(n: Int) {
        var r = SplitMix(seed: UInt64(47 + n))
        var g = (0..<n).map { i -> Float in i % 3 == 0 ? r.normal() * 2 : r.normal() * 40 }
        let u = (0..<n).map { _ in r.normal() }
        let specials: [Float] = [0, -0.0, 1e-30, -1e-30, 88.8, -88.8, 100, -100, .infinity, .nan, 87.5, -87.5]
        for (i, v) in specials.enumerated() where i < n { g[(i * 7) % n] = v }
        var reference = g
        moek_swiglu_scalar(&reference, u, n)
        for i in 0..<n where g[i].isFinite {
            let x = Double(g[i]), exact = Float(x / (1 + exp(-x)) * Double(u[i]))
            let tolerance = max(4 * exact.ulp, 1e-30)  // below -87 the sigmoid is 0, silu at most ~1e-36
            #expect(abs(reference[i] - exact) <= tolerance, "silu(\(g[i])) · \(u[i]) = \(reference[i]), exact \(exact)")
        }
        for i in 0..<n where g[i].isNaN { #expect(reference[i].isNaN, "NaN stays NaN") }
        for i in 0..<n where g[i] == .infinity { #expect(reference[i] == u[i] * .infinity, "+inf times u") }
        forEachVariant { label in
            var got = g
            moek_swiglu(&got, u, n)
            #expect(got.map(\.bitPattern) == reference.map(\.bitPattern), "\(label)")
        }
    }

    @Test("softmax with F16-rounded probabilities: every path gives the scalar twin's bits, within F16 rounding of the exact softmax",
          arguments: [1, 2, 7, 8, 9, 64, 67, 1000])
    func softmaxRounded(n: Int) {
        var g = SplitMix(seed: UInt64(41 + n))
        // Scores as attention makes them (a few units apart), one far below the rest, a tie for the maximum.
        var scores = (0..<n).map { _ in g.normal() * 4 }
        if n > 2 { scores[n / 2] = -200; scores[n - 1] = scores.max()! }
        var reference = scores
        moek_softmax_f16_round_scalar(&reference, n)
        let top = Double(scores.max()!)
        let exact = scores.map { exp(Double($0) - top) }, total = exact.reduce(0, +)
        for (p, e) in zip(reference, exact) {
            let q = e / total
            #expect(abs(Double(p) - q) <= q * 0x1p-11 + 0x1p-25, "p \(p) vs exact \(q)")  // half an F16 ulp, plus exp's error
            #expect(p == HalfPrecision.float(fromHalf: HalfPrecision.half(fromFloat: p)), "a half-precision value")
        }
        if n > 2 { #expect(reference[n / 2] == 0, "200 below the maximum is 0") }
        #expect(abs(reference.reduce(0, +) - 1) < 1e-3)
        forEachVariant { label in
            var got = scores
            moek_softmax_f16_round(&got, n)
            #expect(got.map(\.bitPattern) == reference.map(\.bitPattern), "\(label)")
        }
    }

    @Test("f16 row conversion matches the Swift reference for every half")
    func halfRow() {
        let all = (0...UInt16.max).map { $0 }
        var out = [Float](repeating: 0, count: all.count)
        moek_f16_to_f32(all, &out, all.count)
        for (h, f) in zip(all, out) {
            let expected = HalfPrecision.float(fromHalf: h)
            if expected.isNaN { #expect(f.isNaN) } else if f != expected { Issue.record("half \(h): \(f) != \(expected)") }
        }
    }
}
