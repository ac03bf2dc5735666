import MoEKernels

/// A weight matrix in the mapped file, used in place: `y = W x` for W of ggml shape
/// `[inputs, outputs]` (each of the `outputs` rows holds `inputs` weights). The activation is
/// converted to the format ggml pairs with the weight type (Q8_0 for Q4_0/Q8_0/Q5_0, Q8_K for
/// K-quants, F16 for F16, F32 for F32), so results track llama.cpp's closely.
struct Linear: @unchecked Sendable {
    let base: UnsafeRawPointer
    let type: GGMLType
    let inputs: Int
    let outputs: Int
    let rowBytes: Int

    /// Binds a 2-D view (or a 1-D view as a single row).
    init(_ view: TensorView) {
        base = view.bytes.baseAddress!
        type = view.type
        inputs = view.rowLength
        outputs = view.rowCount
        rowBytes = view.rowBytes
    }

    init(base: UnsafeRawPointer, type: GGMLType, inputs: Int, outputs: Int) {
        self.base = base
        self.type = type
        self.inputs = inputs
        self.outputs = outputs
        self.rowBytes = inputs / type.blockSize * type.blockBytes
    }

    /// `y[0..<outputs] = W x[0..<inputs]`.
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let n = inputs
        switch type {
        case .f32:
            for r in 0..<outputs {
                y[r] = moek_vec_dot_f32((base + r * rowBytes).assumingMemoryBound(to: Float.self), x, n)
            }
        case .f16:
            moek_f32_to_f16(x, scratch.f16, n)
            for r in 0..<outputs {
                y[r] = moek_vec_dot_f16((base + r * rowBytes).assumingMemoryBound(to: UInt16.self), scratch.f16, n)
            }
        case .q8_0, .q4_0:
            moek_quantize_row_q8_0(x, scratch.q8_0, n)
            let dot = type == .q8_0 ? moek_vec_dot_q8_0_q8_0 : moek_vec_dot_q4_0_q8_0
            for r in 0..<outputs { y[r] = dot(base + r * rowBytes, scratch.q8_0, n) }
        case .q4_K, .q5_K, .q6_K:
            moek_quantize_row_q8_K(x, scratch.q8_K, n)
            let dot = type == .q4_K ? moek_vec_dot_q4_K_q8_K : type == .q5_K ? moek_vec_dot_q5_K_q8_K : moek_vec_dot_q6_K_q8_K
            for r in 0..<outputs { y[r] = dot(base + r * rowBytes, scratch.q8_K, n) }
        default:
            // Types without a kernel yet: dequantize one row at a time into scratch (never the whole matrix).
            for r in 0..<outputs {
                try? type.dequantize(UnsafeRawBufferPointer(start: base + r * rowBytes, count: rowBytes), count: n,
                                     into: UnsafeMutableBufferPointer(start: scratch.row, count: n))
                y[r] = moek_vec_dot_f32(scratch.row, x, n)
            }
        }
    }

    /// Whether `type` has a dot-product kernel (others run through the row-dequantizing fallback).
    static func hasKernel(_ type: GGMLType) -> Bool {
        [.f32, .f16, .q8_0, .q4_0, .q4_K, .q5_K, .q6_K].contains(type)
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

    init(_ view: TensorView) {
        base = view.bytes.baseAddress!
        type = view.type
        inputs = view.shape[0]
        outputs = view.shape[1]
        count = view.shape[2]
        expertBytes = view.byteCount / count
    }

    /// Expert `e`'s matrix.
    func expert(_ e: Int) -> Linear {
        Linear(base: base + e * expertBytes, type: type, inputs: inputs, outputs: outputs)
    }
}

/// Per-session buffers for activations in the formats the kernels take. Allocated once.
final class Scratch {
    let capacity: Int
    let q8_0: UnsafeMutablePointer<moek_block_q8_0>
    let q8_K: UnsafeMutablePointer<moek_block_q8_K>
    let f16: UnsafeMutablePointer<UInt16>
    let row: UnsafeMutablePointer<Float>

    /// Buffers for activation rows of up to `capacity` elements.
    init(capacity: Int) {
        let n = (capacity + 255) / 256 * 256
        self.capacity = n
        q8_0 = .allocate(capacity: n / 32)
        q8_K = .allocate(capacity: n / 256)
        f16 = .allocate(capacity: n)
        row = .allocate(capacity: n)
    }

    deinit {
        q8_0.deallocate()
        q8_K.deallocate()
        f16.deallocate()
        row.deallocate()
    }
}
