import CMoE
import MoE

/// What a `moe_model *` points to: the open file, and the runnable model when its architecture
/// is supported (metadata calls work on any GGUF file; sessions need the model).
final class ModelHandle: Sendable {
    let file: GGUFFile
    let model: Result<Model, MoEError>
    /// Threads for sessions that ask for the default (0 = one per core).
    let threads: Int
    private let vocabularyOnly = Locked<Result<Tokenizer, MoEError>?>(nil)
    init(file: GGUFFile, threads: Int = 0, options: ModelOptions = ModelOptions()) {
        self.file = file
        self.threads = threads
        do { model = .success(try Model(file: file, options: options)) } catch { model = .failure(error) }
    }

    /// The tokenizer: the model's, or for a file that cannot run (a vocabulary-only file), one
    /// built from its metadata alone.
    func tokenizer() throws(MoEError) -> Tokenizer {
        if case .success(let m) = model { return try m.tokenizer() }
        let result = vocabularyOnly.withLock { cached -> Result<Tokenizer, MoEError> in
            if let cached { return cached }
            let made = Result { () throws(MoEError) -> Tokenizer in try Tokenizer(file: file) }
            cached = made
            return made
        }
        return try result.get()
    }
}

func handle(_ pointer: OpaquePointer) -> ModelHandle {
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

@c @implementation
public func moe_model_default_params() -> moe_model_params {
    moe_model_params(size: UInt32(MemoryLayout<moe_model_params>.size), n_threads: 0, expert_memory: 0, mmap_prefetch: 0,
                     expert_policy: Int32(MOE_EXPERT_POLICY_LRU), expert_prefetch: 1, expert_io_threads: 0, expert_profile: nil)
}

@c @implementation
public func moe_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<moe_model_params>?,
                           _ out: UnsafeMutablePointer<OpaquePointer?>?) -> moe_status {
    Handles.enterNone()
    guard let path else { return invalid("moe_model_load: path is NULL") }
    guard let out else { return invalid("moe_model_load: out is NULL") }
    var threads = 0, prefetch = false
    var store: ExpertStoreOptions?
    if let params {
        let size = Int(params.pointee.size)
        guard size >= MemoryLayout<UInt32>.size, size <= 1 << 16 else {
            return invalid("moe_model_load: params->size is \(size); initialise params with moe_model_default_params()")
        }
        // Fields beyond the caller's struct size keep their defaults.
        func has<T>(_ field: KeyPath<moe_model_params, T>) -> Bool {
            size >= MemoryLayout<moe_model_params>.offset(of: field)! + MemoryLayout<T>.size
        }
        if has(\.n_threads) {
            guard params.pointee.n_threads >= 0, params.pointee.n_threads <= 1024 else {
                return invalid("moe_model_load: n_threads is \(params.pointee.n_threads), expected 0 (one per core) to 1024")
            }
            threads = Int(params.pointee.n_threads)
        }
        if has(\.mmap_prefetch) { prefetch = params.pointee.mmap_prefetch != 0 }
        if has(\.expert_memory), params.pointee.expert_memory != 0 {
            guard params.pointee.expert_memory <= UInt64(Int.max) else { return invalid("moe_model_load: expert_memory is too large") }
            var o = ExpertStoreOptions(budget: Int(params.pointee.expert_memory))
            if has(\.expert_policy) {
                switch params.pointee.expert_policy {
                case Int32(MOE_EXPERT_POLICY_LRU): o.policy = .lru
                case Int32(MOE_EXPERT_POLICY_LFU): o.policy = .lfu
                default: return invalid("moe_model_load: expert_policy is \(params.pointee.expert_policy), expected MOE_EXPERT_POLICY_LRU or _LFU")
                }
            }
            if has(\.expert_prefetch) { o.prefetch = params.pointee.expert_prefetch != 0 }
            if has(\.expert_io_threads), params.pointee.expert_io_threads != 0 {
                guard params.pointee.expert_io_threads >= 1, params.pointee.expert_io_threads <= 64 else {
                    return invalid("moe_model_load: expert_io_threads is \(params.pointee.expert_io_threads), expected 0 (default) to 64")
                }
                o.ioThreads = Int(params.pointee.expert_io_threads)
            }
            if has(\.expert_profile), let profile = params.pointee.expert_profile {
                do {
                    o.seedCounts = try ExpertStoreOptions.seedCounts(usageCSV: try readWholeFile(String(cString: profile)))
                } catch {
                    return fail(error)
                }
            }
            store = o
        }
    }
    do {
        let file = try GGUFFile(path: String(cString: path))
        let made = ModelHandle(file: file, threads: threads, options: ModelOptions(expertStore: store, prefetchFile: prefetch))
        if store != nil, case .failure(let error) = made.model { return fail(error) }  // a budget needs a runnable model
        if prefetch, case .failure = made.model { file.mapping.prefetch() }
        out.pointee = Handles.register(OpaquePointer(Unmanaged.passRetained(made).toOpaque()), .model)
        return MOE_STATUS_OK
    } catch {
        return fail(error)
    }
}

@c @implementation
public func moe_model_free(_ model: OpaquePointer?) {
    guard let model else { return }
    // A pointer that is not live (freed twice, or never ours) is ignored rather than freed.
    guard Handles.remove(model, .model) else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).release()
}

@c @implementation
public func moe_model_meta_string(_ model: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                  _ buf: UnsafeMutablePointer<CChar>?, _ bufSize: Int,
                                  _ needed: UnsafeMutablePointer<Int>?) -> moe_status {
    guard let model else { return invalid("moe_model_meta_string: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_model_meta_string: model was freed or is not a model handle") }
    guard let key else { return invalid("moe_model_meta_string: key is NULL") }
    let name = String(cString: key)
    guard let value = handle(model).file.metadata[name] else {
        return fail(MoEError(.notFound, "metadata key '\(name)' is missing", path: handle(model).file.path))
    }
    let text = Array(value.description.utf8)
    needed?.pointee = text.count
    guard bufSize > text.count else {
        return invalid("moe_model_meta_string: the value of '\(name)' needs \(text.count + 1) bytes with its NUL, the buffer has \(bufSize)")
    }
    guard let buf else { return invalid("moe_model_meta_string: buf is NULL") }
    text.withUnsafeBufferPointer { bytes in
        UnsafeMutableRawPointer(buf).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }
    buf[text.count] = 0
    return MOE_STATUS_OK
}

@c @implementation
public func moe_model_tensor_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> moe_status {
    guard let model else { return invalid("moe_model_tensor_count: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_model_tensor_count: model was freed or is not a model handle") }
    guard let out else { return invalid("moe_model_tensor_count: out is NULL") }
    out.pointee = Int64(handle(model).file.tensors.count)
    return MOE_STATUS_OK
}

/// The whole contents of a (small) file, for options that name one.
func readWholeFile(_ path: String) throws(MoEError) -> String {
    let file = try MappedFile(path: path)
    guard file.size <= 64 << 20 else { throw MoEError(.invalidArgument, "the file is larger than 64 MiB", path: path) }
    return String(decoding: file.bytes, as: UTF8.self)
}

@c @implementation
public func moe_model_expert_store_stats(_ model: OpaquePointer?, _ layer: Int32, _ stats: UnsafeMutablePointer<moe_expert_store_stats>?) -> moe_status {
    guard let model else { return invalid("moe_model_expert_store_stats: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_model_expert_store_stats: model was freed or is not a model handle") }
    guard let stats else { return invalid("moe_model_expert_store_stats: stats is NULL") }
    let size = stats.pointee.size
    guard size >= 4, size <= 1 << 16 else { return invalid("moe_model_expert_store_stats: stats->size is \(size); set it to sizeof(moe_expert_store_stats)") }
    guard case .success(let m) = handle(model).model else { return fail(MoEError(.notFound, "the model has no expert store (it cannot run)")) }
    guard let s = m.expertStoreStats else {
        return fail(MoEError(.notFound, "the model was loaded without expert_memory, so it has no expert store", path: m.file.path))
    }
    guard layer >= -1, Int(layer) < s.layers.count else {
        return invalid("moe_model_expert_store_stats: layer is \(layer), expected -1 (all) or 0..<\(s.layers.count)")
    }
    let c = layer < 0 ? s.total : s.layers[Int(layer)]
    func u(_ v: Int) -> UInt64 { UInt64(max(v, 0)) }
    let out = moe_expert_store_stats(
        size: size, hits: u(c.hits), misses: u(c.misses), prefetch_hits: u(c.prefetchHits), prefetches: u(c.prefetches),
        wasted_prefetches: u(c.wastedPrefetches), bytes_read: u(c.bytesRead), stall_ns: u(c.stallNanoseconds),
        predicted: u(c.predicted), predicted_correctly: u(c.predictedCorrectly), chosen_after_prediction: u(c.chosenAfterPrediction),
        resident_slots: u(c.residentSlots), slots: u(layer < 0 ? s.slots : c.quota), slot_bytes: u(s.slotBytes))
    writeSized(out, to: stats, size: size)
    return MOE_STATUS_OK
}

@c @implementation
public func moe_model_reset_expert_store_stats(_ model: OpaquePointer?) -> moe_status {
    guard let model else { return invalid("moe_model_reset_expert_store_stats: model is NULL") }
    guard Handles.enter(model, .model) else { return invalid("moe_model_reset_expert_store_stats: model was freed or is not a model handle") }
    guard case .success(let m) = handle(model).model, m.expertStoreStats != nil else {
        return fail(MoEError(.notFound, "the model was loaded without expert_memory, so it has no expert store"))
    }
    m.resetExpertStoreStats()
    return MOE_STATUS_OK
}
