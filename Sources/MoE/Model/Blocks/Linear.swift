import MoEKernels

/// The format an activation vector is converted to before it meets a weight type, as ggml pairs
/// them: Q8_0 for Q4_0/Q8_0, Q8_K for K-quants, F16 for F16, F32 for F32.
enum ActivationFormat {
    case f32, f16, q8_0, q8_K
    /// Types without a dot-product kernel: rows are dequantized one at a time.
    case dequantizeRows
}

/// An activation vector converted once into every format a set of matrices needs.
final class ActivationBuffer {
    let capacity: Int
    let q8_0: UnsafeMutablePointer<moek_block_q8_0>
    /// Per Q8_0 block, the 8·Σqs that Q4_0 kernels subtract.
    let offsets: UnsafeMutablePointer<Int32>
    let q8_K: UnsafeMutablePointer<moek_block_q8_K>
    let f16: UnsafeMutablePointer<UInt16>
    let row: UnsafeMutablePointer<Float>
    private(set) var source: UnsafePointer<Float>?
    private(set) var count = 0

    /// Buffers for vectors of up to `capacity` elements.
    init(capacity: Int) {
        let n = max(256, (capacity + 255) / 256 * 256)
        self.capacity = n
        q8_0 = .allocate(capacity: n / 32)
        offsets = .allocate(capacity: n / 32)
        q8_K = .allocate(capacity: n / 256)
        f16 = .allocate(capacity: n)
        row = .allocate(capacity: n)
    }

    deinit {
        q8_0.deallocate()
        offsets.deallocate()
        q8_K.deallocate()
        f16.deallocate()
        row.deallocate()
    }

    /// Converts the `n` floats at `x` into `format` (x must stay valid while the buffer is used).
    func prepare(_ x: UnsafePointer<Float>, count n: Int, for format: ActivationFormat) {
        source = x
        count = n
        switch format {
        case .f32, .dequantizeRows: break
        case .f16: moek_f32_to_f16(x, f16, n)
        case .q8_0:
            moek_quantize_row_q8_0(x, q8_0, n)
            moek_q8_0_offsets(q8_0, n, offsets)
        case .q8_K: moek_quantize_row_q8_K(x, q8_K, n)
        }
    }
}

/// Several activation rows (the tokens of a batch) converted for the matrix-matrix kernels: row
/// t of each format at a fixed stride, so a kernel can walk any subset of them by index.
final class ActivationBatch {
    /// Rows, and elements per row (a multiple of 256).
    let rows: Int
    let width: Int
    let q8_0: UnsafeMutablePointer<moek_block_q8_0>
    let offsets: UnsafeMutablePointer<Int32>
    let q8_K: UnsafeMutablePointer<moek_block_q8_K>
    let f16: UnsafeMutablePointer<UInt16>
    let f32: UnsafeMutablePointer<Float>
    /// One dequantized weight row, for types without a kernel (callers then run serially).
    let scratch: UnsafeMutablePointer<Float>

    /// Storage for `rows` rows of up to `width` elements.
    init(rows: Int, width: Int) {
        let n = max(256, (width + 255) / 256 * 256)
        self.rows = max(rows, 1)
        self.width = n
        q8_0 = .allocate(capacity: self.rows * n / 32)
        offsets = .allocate(capacity: self.rows * n / 32)
        q8_K = .allocate(capacity: self.rows * n / 256)
        f16 = .allocate(capacity: self.rows * n)
        f32 = .allocate(capacity: self.rows * n)
        scratch = .allocate(capacity: n)
    }

    deinit {
        q8_0.deallocate()
        offsets.deallocate()
        q8_K.deallocate()
        f16.deallocate()
        f32.deallocate()
        scratch.deallocate()
    }

    /// Converts the `n` floats at `x` into row `t` of `format` (as ActivationBuffer.prepare does).
    func prepare(_ t: Int, _ x: UnsafePointer<Float>, count n: Int, for format: ActivationFormat) {
        switch format {
        case .f32, .dequantizeRows: (f32 + t * width).update(from: x, count: n)
        case .f16: moek_f32_to_f16(x, f16 + t * width, n)
        case .q8_0:
            moek_quantize_row_q8_0(x, q8_0 + t * width / 32, n)
            moek_q8_0_offsets(q8_0 + t * width / 32, n, offsets + t * width / 32)
        case .q8_K: moek_quantize_row_q8_K(x, q8_K + t * width / 256, n)
        }
    }
}

/// A weight matrix in the mapped file, used in place: `y = W x` for W of ggml shape
/// `[inputs, outputs]` (each of the `outputs` rows holds `inputs` weights).
struct Linear: @unchecked Sendable {
    let base: UnsafeRawPointer
    let type: GGMLType
    let inputs: Int
    let outputs: Int
    let rowBytes: Int
    let format: ActivationFormat

    /// Binds a 2-D view (or a 1-D view as a single row).
    init(_ view: TensorView) {
        self.init(base: view.bytes.baseAddress!, type: view.type, inputs: view.rowLength, outputs: view.rowCount)
    }

    init(base: UnsafeRawPointer, type: GGMLType, inputs: Int, outputs: Int) {
        self.base = base
        self.type = type
        self.inputs = inputs
        self.outputs = outputs
        self.rowBytes = inputs / type.blockSize * type.blockBytes
        self.format = Linear.format(for: type)
    }

    /// The activation format ggml uses with `type`.
    static func format(for type: GGMLType) -> ActivationFormat {
        switch type {
        case .f32: .f32
        case .f16: .f16
        case .q8_0, .q4_0: .q8_0
        case .q4_K, .q5_K, .q6_K: .q8_K
        default: .dequantizeRows
        }
    }

    /// Row `r` · the prepared activation.
    @inline(__always)
    func dot(_ r: Int, _ a: ActivationBuffer) -> Float {
        let row = base + r * rowBytes
        switch type {
        case .f32: return moek_vec_dot_f32(row.assumingMemoryBound(to: Float.self), a.source!, inputs)
        case .f16: return moek_vec_dot_f16(row.assumingMemoryBound(to: UInt16.self), a.f16, inputs)
        case .q8_0: return moek_vec_dot_q8_0_q8_0(row, a.q8_0, inputs)
        case .q4_0: return moek_vec_dot_q4_0_q8_0(row, a.q8_0, inputs)
        case .q4_K: return moek_vec_dot_q4_K_q8_K(row, a.q8_K, inputs)
        case .q5_K: return moek_vec_dot_q5_K_q8_K(row, a.q8_K, inputs)
        case .q6_K: return moek_vec_dot_q6_K_q8_K(row, a.q8_K, inputs)
        default:
            // One row dequantized into the buffer's own scratch row: callers run these serially.
            try? type.dequantize(UnsafeRawBufferPointer(start: row, count: rowBytes), count: inputs,
                                 into: UnsafeMutableBufferPointer(start: a.row, count: inputs))
            return moek_vec_dot_f32(a.row, a.source!, inputs)
        }
    }

    /// Whether `dot4` has a four-row kernel for this type.
    var hasFourRowKernel: Bool {
        switch type {
        case .q4_0, .q8_0, .q4_K, .q5_K, .q6_K: true
        default: false
        }
    }

    /// Rows r..<r+4 · the prepared activation, for the types of `hasFourRowKernel`.
    @inline(__always)
    func dot4(_ r: Int, _ a: ActivationBuffer, _ out: UnsafeMutablePointer<Float>) {
        let row = base + r * rowBytes
        switch type {
        case .q4_0: moek_vec_dot4_q4_0_q8_0(row, rowBytes, a.q8_0, a.offsets, inputs, out)
        case .q8_0: moek_vec_dot4_q8_0_q8_0(row, rowBytes, a.q8_0, inputs, out)
        case .q4_K: moek_vec_dot4_q4_K_q8_K(row, rowBytes, a.q8_K, inputs, out)
        case .q5_K: moek_vec_dot4_q5_K_q8_K(row, rowBytes, a.q8_K, inputs, out)
        case .q6_K: moek_vec_dot4_q6_K_q8_K(row, rowBytes, a.q8_K, inputs, out)
        default: for k in 0..<4 { out[k] = dot(r + k, a) }  // no four-row kernel: one row at a time
        }
    }

    /// `y[r] = W[r] · a` for the rows in `rows`; eight rows at a time for Q4_0, four where a
    /// 4-row kernel exists (F32: the matrix-matrix kernel's four-row chains).
    @inline(__always)
    func apply(rows: Range<Int>, _ a: ActivationBuffer, _ y: UnsafeMutablePointer<Float>) {
        var r = rows.lowerBound
        if type == .f32 {  // four rows' independent chains at a time (the one-row dot's bits)
            moek_gemm_f32((base + r * rowBytes).assumingMemoryBound(to: Float.self), rows.count, inputs, a.source!, 0, nil, 1,
                          y + r, 0, nil)
            return
        }
        if type == .q4_0 {
            while r + 8 <= rows.upperBound {
                moek_vec_dot8_q4_0_q8_0(base + r * rowBytes, rowBytes, a.q8_0, a.offsets, inputs, y + r)
                r += 8
            }
        }
        if hasFourRowKernel {
            while r + 4 <= rows.upperBound {
                dot4(r, a, y + r)
                r += 4
            }
        }
        while r < rows.upperBound {
            y[r] = dot(r, a)
            r += 1
        }
    }

    /// `y[r] += weight * (W[r] · a)` for the rows in `rows` (the weighted sum of expert outputs).
    @inline(__always)
    func accumulate(rows: Range<Int>, _ a: ActivationBuffer, weight: Float, into y: UnsafeMutablePointer<Float>) {
        var r = rows.lowerBound
        if type == .q4_0 {
            var out: (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
            while r + 8 <= rows.upperBound {
                withUnsafeMutableBytes(of: &out) {
                    let o = $0.baseAddress!.assumingMemoryBound(to: Float.self)
                    moek_vec_dot8_q4_0_q8_0(base + r * rowBytes, rowBytes, a.q8_0, a.offsets, inputs, o)
                    for k in 0..<8 { y[r + k] += weight * o[k] }
                }
                r += 8
            }
        }
        if hasFourRowKernel {
            var out: (Float, Float, Float, Float) = (0, 0, 0, 0)
            while r + 4 <= rows.upperBound {
                withUnsafeMutableBytes(of: &out) { dot4(r, a, $0.baseAddress!.assumingMemoryBound(to: Float.self)) }
                y[r] += weight * out.0
                y[r + 1] += weight * out.1
                y[r + 2] += weight * out.2
                y[r + 3] += weight * out.3
                r += 4
            }
        }
        while r < rows.upperBound {
            y[r] += weight * dot(r, a)
            r += 1
        }
    }

    /// `y[yIndex[t] * yStride + r] = W[r] · a[xIndex[t]]` for the rows in `rows` and `tokens`
    /// activation rows of `a` (nil indices: 0..<tokens): every weight row is read once for all of
    /// them. Each output equals `dot(r, ...)` of the one-token path bit for bit. Types without a
    /// kernel use `a.scratch`, so such calls must not run concurrently on the same batch.
    func gemm(rows: Range<Int>, _ a: ActivationBatch, tokens: Int, xIndex: UnsafePointer<Int32>?,
              _ y: UnsafeMutablePointer<Float>, yStride: Int, yIndex: UnsafePointer<Int32>?) {
        guard !rows.isEmpty, tokens > 0 else { return }
        let w = base + rows.lowerBound * rowBytes, n = rows.count, out = y + rows.lowerBound
        let width = a.width
        switch type {
        case .q4_0: moek_gemm_q4_0_q8_0(w, rowBytes, n, inputs, a.q8_0, a.offsets, width / 32, xIndex, tokens, out, yStride, yIndex)
        case .q8_0: moek_gemm_q8_0_q8_0(w, rowBytes, n, inputs, a.q8_0, a.offsets, width / 32, xIndex, tokens, out, yStride, yIndex)
        case .q4_K: moek_gemm_q4_K_q8_K(w, rowBytes, n, inputs, a.q8_K, width / 256, xIndex, tokens, out, yStride, yIndex)
        case .q5_K: moek_gemm_q5_K_q8_K(w, rowBytes, n, inputs, a.q8_K, width / 256, xIndex, tokens, out, yStride, yIndex)
        case .q6_K: moek_gemm_q6_K_q8_K(w, rowBytes, n, inputs, a.q8_K, width / 256, xIndex, tokens, out, yStride, yIndex)
        case .f16: moek_gemm_f16(w.assumingMemoryBound(to: UInt16.self), n, inputs, a.f16, width, xIndex, tokens, out, yStride, yIndex)
        case .f32: moek_gemm_f32(w.assumingMemoryBound(to: Float.self), n, inputs, a.f32, width, xIndex, tokens, out, yStride, yIndex)
        default:
            for r in rows {
                try? type.dequantize(UnsafeRawBufferPointer(start: base + r * rowBytes, count: rowBytes), count: inputs,
                                     into: UnsafeMutableBufferPointer(start: a.scratch, count: inputs))
                for t in 0..<tokens {
                    let xi = xIndex.map { Int($0[t]) } ?? t, yi = yIndex.map { Int($0[t]) } ?? t
                    y[yi * yStride + r] = moek_vec_dot_f32(a.scratch, a.f32 + xi * width, inputs)
                }
            }
        }
    }

    /// `y = W x`, rows spread over `pool` in chunks.
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, buffer: ActivationBuffer, pool: ThreadPool) {
        buffer.prepare(x, count: inputs, for: format)
        guard format != .dequantizeRows else { return apply(rows: 0..<outputs, buffer, y) }
        let chunks = Linear.chunkCount(rows: outputs, threads: pool.threads)
        pool.parallelFor(chunks) { c in
            apply(rows: Linear.chunk(c, of: chunks, rows: outputs), buffer, y)
        }
    }

    /// How many chunks to split each of `matrices` matrices of `rows` rows into, when all of them
    /// go to the pool in one loop: two to four tasks per thread in all, a multiple of the thread
    /// count where one is in that range (equal tasks then end together), and at least 16 rows
    /// each so the hand-out cost stays small. No more than that: each chunk's decode kernel
    /// prefetches rows past its end that it does not use, and misses its own first rows.
    /// (olmoe Q4_0 decode on Zen 5, 2 threads: eight chunks per matrix 50.4 t/s, one per expert
    /// matrix 62.6.)
    static func chunkCount(rows: Int, threads: Int, matrices: Int = 1) -> Int {
        guard threads > 1 else { return 1 }
        let fewest = (threads * 2 + matrices - 1) / matrices, most = (threads * 4 + matrices - 1) / matrices
        var chunks = fewest
        while chunks < most && (chunks * matrices) % threads != 0 { chunks += 1 }
        if (chunks * matrices) % threads != 0 { chunks = fewest }
        return max(1, min(chunks, rows / 16))
    }

    /// The rows of chunk `c` out of `chunks`.
    @inline(__always)
    static func chunk(_ c: Int, of chunks: Int, rows: Int) -> Range<Int> {
        (c * rows / chunks)..<((c + 1) * rows / chunks)
    }
}

/// Stacked expert matrices (`ffn_*_exps`, ggml shape `[inputs, outputs, experts]`): expert `e`'s
/// matrix is a `Linear` at a fixed stride, made without allocation.
struct ExpertLinear: @unchecked Sendable {
    let base: UnsafeRawPointer
    let type: GGMLType
    let inputs: Int
    let outputs: Int
    let count: Int
    let expertBytes: Int
    /// Where expert 0's matrix starts in the file (the expert store reads from here).
    let fileOffset: Int

    init(_ view: TensorView) {
        base = view.bytes.baseAddress!
        fileOffset = view.fileOffset
        type = view.type
        inputs = view.shape[0]
        outputs = view.shape[1]
        count = view.shape[2]
        expertBytes = view.byteCount / count
    }

    /// Expert `e`'s matrix.
    @inline(__always)
    func expert(_ e: Int) -> Linear {
        Linear(base: base + e * expertBytes, type: type, inputs: inputs, outputs: outputs)
    }
}
