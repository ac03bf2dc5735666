/// What `moe info` reports about a GGUF model: architecture, hyperparameters, tokenizer, and where
/// the bytes are (routed experts vs everything else, and the active set one decoded token touches).
/// Built from metadata and tensor infos only; no tensor data is read.
public struct ModelSummary: Sendable {
    /// Bytes and count of the tensors of one type.
    public struct TypeUsage: Sendable {
        /// The element type.
        public var type: GGMLType
        /// How many tensors have this type.
        public var tensors: Int
        /// Their bytes.
        public var bytes: Int
        /// Their elements (parameters).
        public var elements: Int
    }

    /// The file's path.
    public var path: String
    /// The file's size in bytes.
    public var fileBytes: Int
    /// The GGUF version.
    public var version: UInt32
    /// `general.architecture`.
    public var architecture: String?
    /// `general.name`.
    public var name: String?
    /// `{arch}.block_count`.
    public var layers: Int?
    /// `{arch}.embedding_length` (d_model).
    public var embeddingLength: Int?
    /// `{arch}.attention.head_count`.
    public var headCount: Int?
    /// `{arch}.attention.head_count_kv`.
    public var headCountKV: Int?
    /// `{arch}.attention.key_length`, or d_model / heads.
    public var headDimension: Int?
    /// `{arch}.context_length` (the training context).
    public var contextLength: Int?
    /// `{arch}.rope.freq_base`.
    public var ropeFreqBase: Double?
    /// `{arch}.rope.dimension_count`.
    public var ropeDimensions: Int?
    /// `{arch}.rope.scaling.type`.
    public var ropeScaling: String?
    /// `{arch}.feed_forward_length` (dense FFN size).
    public var feedForwardLength: Int?
    /// `{arch}.expert_count`.
    public var expertCount: Int?
    /// `{arch}.expert_used_count` (top-k).
    public var expertUsedCount: Int?
    /// `{arch}.expert_feed_forward_length` (one expert's FFN size), or the shape of the expert tensors.
    public var expertFeedForwardLength: Int?
    /// `{arch}.expert_shared_count`, or 1 when the file has shared-expert tensors and no count.
    public var sharedExpertCount: Int?
    /// `tokenizer.ggml.model`.
    public var tokenizerModel: String?
    /// `tokenizer.ggml.pre`.
    public var tokenizerPre: String?
    /// The number of entries in `tokenizer.ggml.tokens`.
    public var vocabularySize: Int?
    /// Whether the file has `tokenizer.chat_template`.
    public var hasChatTemplate: Bool
    /// Tensor count, bytes and elements per type, largest first.
    public var types: [TypeUsage]
    /// Number of tensors.
    public var tensorCount: Int
    /// Bytes of all tensors.
    public var tensorBytes: Int
    /// Elements of all tensors.
    public var parameterCount: Int
    /// Bytes of routed-expert tensors (`*_exps`).
    public var routedExpertBytes: Int
    /// Layers with routed-expert tensors.
    public var routedExpertLayers: Int
    /// Bytes one decoded token reads: everything but routed experts and the embedding table,
    /// plus k/n of the routed experts, plus one embedding row (the whole table if the output
    /// head is tied to it).
    public var activeBytesPerToken: Int
    /// Parameters one decoded token uses, counted the same way.
    public var activeParameters: Int

    /// Whether a tensor holds routed experts, by llama.cpp's naming (`ffn_gate_exps` etc.).
    public static func isRoutedExpert(_ name: String) -> Bool {
        name.contains("_exps.") || name.hasSuffix("_exps")
    }

    /// Summarises an open file.
    public init(file: GGUFFile) {
        let m = file.metadata
        func int(_ key: String) -> Int? { m[key]?.intValue }
        func string(_ key: String) -> String? { if case .string(let s)? = m[key] { s } else { nil } }

        path = file.path
        fileBytes = file.mapping.size
        version = file.version
        architecture = m.architecture
        name = string("general.name")
        layers = int("{arch}.block_count")
        embeddingLength = int("{arch}.embedding_length")
        headCount = int("{arch}.attention.head_count")
        headCountKV = int("{arch}.attention.head_count_kv") ?? headCount
        let d = embeddingLength, heads = headCount
        headDimension = int("{arch}.attention.key_length")
            ?? d.flatMap { d in heads.flatMap { $0 > 0 ? d / $0 : nil } }
        contextLength = int("{arch}.context_length")
        ropeFreqBase = m["{arch}.rope.freq_base"]?.doubleValue
        ropeDimensions = int("{arch}.rope.dimension_count")
        ropeScaling = string("{arch}.rope.scaling.type")
        feedForwardLength = int("{arch}.feed_forward_length")
        expertCount = int("{arch}.expert_count")
        expertUsedCount = int("{arch}.expert_used_count")
        let expertGate = file.tensors.first { $0.name.hasSuffix("ffn_gate_exps.weight") || $0.name.hasSuffix("ffn_up_exps.weight") }
        expertFeedForwardLength = int("{arch}.expert_feed_forward_length") ?? expertGate.map { $0.shape.count >= 2 ? $0.shape[1] : 0 }
        let hasShared = file.tensors.contains { $0.name.contains("_shexp") }
        sharedExpertCount = int("{arch}.expert_shared_count") ?? (hasShared ? 1 : nil)
        tokenizerModel = string("tokenizer.ggml.model")
        tokenizerPre = string("tokenizer.ggml.pre")
        if case .array(let tokens)? = m["tokenizer.ggml.tokens"] { vocabularySize = tokens.count }
        hasChatTemplate = m.contains("tokenizer.chat_template")

        var usage: [GGMLType: TypeUsage] = [:]
        var routed = 0, active = 0, activeParams = 0
        var expertLayers = Set<String>()  // "blk.N" prefixes
        let tied = file.tensorInfo("output.weight") == nil
        let k = expertUsedCount ?? 0, n = expertCount ?? 0
        for t in file.tensors {
            usage[t.type, default: TypeUsage(type: t.type, tensors: 0, bytes: 0, elements: 0)].tensors += 1
            usage[t.type]!.bytes += t.byteCount
            usage[t.type]!.elements += t.elementCount
            if ModelSummary.isRoutedExpert(t.name) {
                routed += t.byteCount
                expertLayers.insert(t.name.split(separator: ".").prefix(2).joined(separator: "."))
                if n > 0 {
                    active += t.byteCount / n * min(k, n)
                    activeParams += t.elementCount / n * min(k, n)
                }
            } else if t.name == "token_embd.weight" && !tied {
                active += t.rowBytes
                activeParams += t.rowLength
            } else {
                active += t.byteCount
                activeParams += t.elementCount
            }
        }
        types = usage.values.sorted { ($0.bytes, $0.type.rawValue) > ($1.bytes, $1.type.rawValue) }
        tensorCount = file.tensors.count
        tensorBytes = file.tensors.reduce(0) { $0 + $1.byteCount }
        parameterCount = file.tensors.reduce(0) { $0 + $1.elementCount }
        routedExpertBytes = routed
        routedExpertLayers = expertLayers.count
        activeBytesPerToken = active
        activeParameters = activeParams
    }

    /// Bytes of one routed expert in one layer (gate, up and down), averaged over the layers; 0
    /// without routed experts.
    public var bytesPerRoutedExpert: Double {
        guard let n = expertCount, n > 0, routedExpertLayers > 0 else { return 0 }
        return Double(routedExpertBytes) / Double(n * routedExpertLayers)
    }

    /// Bytes a forward step reads that runs `experts` routed experts per layer (each read once
    /// however many tokens chose it): the step's share of everything but the routed experts, as
    /// in `activeBytesPerToken`, plus those experts.
    public func bytesPerStep(expertsPerLayer experts: Double) -> Double {
        let k = Double(min(expertUsedCount ?? 0, expertCount ?? 0))
        let routedPerToken = k * Double(routedExpertLayers) * bytesPerRoutedExpert
        return Double(activeBytesPerToken) - routedPerToken + experts * Double(routedExpertLayers) * bytesPerRoutedExpert
    }

    /// The summary as one JSON object (the shape `moe info --json` prints; see docs/FORMATS.md).
    public var json: JSONValue {
        .object([
            ("path", .string(path)),
            ("file_bytes", .int(fileBytes)),
            ("gguf_version", .int(Int(version))),
            ("architecture", .string(architecture)),
            ("name", .string(name)),
            ("hyperparameters", .object([
                ("layers", .int(layers)),
                ("embedding_length", .int(embeddingLength)),
                ("head_count", .int(headCount)),
                ("head_count_kv", .int(headCountKV)),
                ("head_dimension", .int(headDimension)),
                ("context_length", .int(contextLength)),
                ("rope_freq_base", .double(ropeFreqBase)),
                ("rope_dimension_count", .int(ropeDimensions)),
                ("rope_scaling", .string(ropeScaling)),
                ("feed_forward_length", .int(feedForwardLength)),
                ("expert_count", .int(expertCount)),
                ("expert_used_count", .int(expertUsedCount)),
                ("expert_feed_forward_length", .int(expertFeedForwardLength)),
                ("expert_shared_count", .int(sharedExpertCount)),
            ])),
            ("tokenizer", .object([
                ("model", .string(tokenizerModel)),
                ("pre", .string(tokenizerPre)),
                ("vocab_size", .int(vocabularySize)),
                ("chat_template", .bool(hasChatTemplate)),
            ])),
            ("tensors", .object([
                ("count", .int(tensorCount)),
                ("bytes", .int(tensorBytes)),
                ("parameters", .int(parameterCount)),
                ("by_type", .array(types.map { u in
                    .object([("type", .string(u.type.name)), ("tensors", .int(u.tensors)),
                             ("bytes", .int(u.bytes)), ("parameters", .int(u.elements))])
                })),
            ])),
            ("bytes", .object([
                ("routed_experts", .int(routedExpertBytes)),
                ("other", .int(tensorBytes - routedExpertBytes)),
                ("active_per_token", .int(activeBytesPerToken)),
            ])),
            ("active_parameters", .int(activeParameters)),
        ])
    }
}
