/// What a token is, from the GGUF `tokenizer.ggml.token_type` array (llama.cpp's attributes).
public struct TokenAttributes: OptionSet, Sendable, Hashable {
    /// The raw bits.
    public let rawValue: UInt8
    /// Creates attributes from raw bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// An ordinary piece of text.
    public static let normal = TokenAttributes(rawValue: 1 << 0)
    /// The unknown token.
    public static let unknown = TokenAttributes(rawValue: 1 << 1)
    /// A control token (BOS, EOS, chat markers): never produced from plain text, not printed.
    public static let control = TokenAttributes(rawValue: 1 << 2)
    /// A token added by the model's authors: matched in text before anything else, printed as is.
    public static let userDefined = TokenAttributes(rawValue: 1 << 3)
    /// A reserved, unused slot.
    public static let unused = TokenAttributes(rawValue: 1 << 4)
    /// One raw byte, `<0xAB>` (SentencePiece byte fallback).
    public static let byte = TokenAttributes(rawValue: 1 << 5)
    /// Whitespace to the right of the token is eaten when it is matched in text.
    public static let rstrip = TokenAttributes(rawValue: 1 << 6)

    /// Attributes for a GGUF token type value (0 undefined, 1 normal, 2 unknown, 3 control,
    /// 4 user-defined, 5 unused, 6 byte).
    init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = []
        }
    }
}

/// The tokenizer vocabulary stored in a GGUF file: token texts, types, scores, merges, the
/// special token ids and the flags that say how text is turned into tokens.
public struct Vocabulary: Sendable {
    /// The tokenizer algorithm (`tokenizer.ggml.model`).
    public enum Kind: String, Sendable {
        /// Byte-level BPE with merges (`gpt2`): Llama 3, Qwen, DeepSeek, OLMoE...
        case bytePairEncoding = "gpt2"
        /// SentencePiece BPE with scores and byte fallback (`llama`): Llama 2, Mistral, Mixtral.
        case sentencePiece = "llama"
    }

    /// The algorithm.
    public let kind: Kind
    /// The token texts, indexed by id (byte-level BPE texts use GPT-2's byte map; SentencePiece
    /// texts use U+2581 for spaces).
    public let tokens: [String]
    /// Per-token attributes.
    public let attributes: [TokenAttributes]
    /// Per-token scores (SentencePiece); empty when the file has none.
    public let scores: [Float]
    /// `tokenizer.ggml.pre`, when present.
    public let preTokenizerName: String?
    /// The split rule in use (byte-level BPE only).
    public let preTokenizerRule: PreTokenizerRule?
    /// A warning to show the user (for example an unknown pre-tokenizer name), or nil.
    public let warning: String?
    /// Beginning-of-sequence token.
    public let bos: Int32?
    /// End-of-sequence token.
    public let eos: Int32?
    /// End-of-turn token (chat models).
    public let eot: Int32?
    /// Unknown token.
    public let unk: Int32?
    /// Padding token.
    public let pad: Int32?
    /// Every token that ends generation: EOS, EOT, EOM and the control tokens chat formats use to
    /// end a turn.
    public let endOfGeneration: Set<Int32>
    /// Whether `encode` with `addSpecial` puts BOS first.
    public let addBOS: Bool
    /// Whether `encode` with `addSpecial` puts EOS last.
    public let addEOS: Bool
    /// Whether SentencePiece text gets a leading space (U+2581) before the first word.
    public let addSpacePrefix: Bool
    /// The chat template text (`tokenizer.chat_template`), when present.
    public let chatTemplate: String?

    /// Token id by the exact UTF-8 bytes of its text. (Not `String` keys: Swift strings compare
    /// by canonical equivalence, so "e\u{301}" would find the token "é".)
    let ids: [[UInt8]: Int32]
    /// Merge rank by the bytes of "left right".
    let mergeRanks: [[UInt8]: Int32]
    /// Control, user-defined and unknown tokens, longest text first: matched in raw text first.
    let specialTokens: [Int32]

    /// The number of tokens.
    public var count: Int { tokens.count }

    /// The id of a token text, or nil.
    public func id(of text: String) -> Int32? { ids[Array(text.utf8)] }

    /// Reads the vocabulary from a GGUF file's metadata.
    public init(file: GGUFFile) throws(MoEError) {
        do {
            try self.init(metadata: file.metadata)
        } catch {
            throw error.at(path: file.path)
        }
    }

    /// Reads the vocabulary from GGUF metadata.
    public init(metadata m: GGUFMetadata) throws(MoEError) {
        let model = try m.string("tokenizer.ggml.model")
        guard let kind = Kind(rawValue: model) else {
            throw MoEError(.unsupported, "tokenizer '\(model)' is not supported (swift-moe reads 'gpt2' byte-level BPE and 'llama' SentencePiece vocabularies)")
        }
        self.kind = kind
        let tokenArray = try m.array("tokenizer.ggml.tokens")
        guard let tokens = tokenArray.strings, tokens.count == tokenArray.count else {
            throw MoEError(.invalidFile, "metadata key 'tokenizer.ggml.tokens' must be an array of strings")
        }
        guard !tokens.isEmpty, tokens.count < Int(Int32.max) else {
            throw MoEError(.invalidFile, "metadata key 'tokenizer.ggml.tokens' holds \(tokens.count) tokens")
        }
        self.tokens = tokens
        let n = tokens.count

        var baseAttributes: [TokenAttributes]
        if m.contains("tokenizer.ggml.token_type") {
            let a = try m.array("tokenizer.ggml.token_type")
            guard let types = a.integers, types.count == n else {
                throw MoEError(.invalidFile, "metadata key 'tokenizer.ggml.token_type' must hold \(n) integers")
            }
            baseAttributes = types.map { TokenAttributes(tokenType: $0) }
        } else {
            baseAttributes = Array(repeating: .normal, count: n)
        }
        if m.contains("tokenizer.ggml.scores") {
            let a = try m.array("tokenizer.ggml.scores")
            guard let s = a.doubles, s.count == n else {
                throw MoEError(.invalidFile, "metadata key 'tokenizer.ggml.scores' must hold \(n) numbers")
            }
            scores = s.map { Float($0) }
        } else {
            scores = []
        }

        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(n)
        for (i, t) in tokens.enumerated() {
            let key = Array(t.utf8)
            if ids[key] == nil { ids[key] = Int32(i) }
        }
        self.ids = ids

        var ranks: [[UInt8]: Int32] = [:]
        if kind == .bytePairEncoding {
            let merges = try m.array("tokenizer.ggml.merges")
            guard let lines = merges.strings, lines.count == merges.count else {
                throw MoEError(.invalidFile, "metadata key 'tokenizer.ggml.merges' must be an array of strings")
            }
            ranks.reserveCapacity(lines.count)
            for (rank, line) in lines.enumerated() {
                // "left right": the separator is the first space after the first byte, so a
                // left part that is itself a space still works.
                let bytes = Array(line.utf8)
                guard bytes.count >= 3, bytes[1...].contains(0x20) else {
                    throw MoEError(.invalidFile, "merge \(rank) ('\(line)') is not 'left right'")
                }
                if ranks[bytes] == nil { ranks[bytes] = Int32(rank) }
            }
        }
        mergeRanks = ranks

        func tokenId(_ key: String) throws(MoEError) -> Int32? {
            guard m.contains(key) else { return nil }
            let v = try m.int(key)
            // llama.cpp ignores an out-of-range special id with a warning; so do we.
            guard v >= 0, v < n else { return nil }
            return Int32(v)
        }
        bos = try tokenId("tokenizer.ggml.bos_token_id")
        eos = try tokenId("tokenizer.ggml.eos_token_id")
        eot = try tokenId("tokenizer.ggml.eot_token_id")
        unk = try tokenId("tokenizer.ggml.unknown_token_id")
        pad = try tokenId("tokenizer.ggml.padding_token_id")
        let eom = try tokenId("tokenizer.ggml.eom_token_id")

        var warning: String?
        switch kind {
        case .bytePairEncoding:
            let pre = try m.optionalString("tokenizer.ggml.pre")
            preTokenizerName = pre
            if let pre, let rule = PreTokenizerRule.named(pre) {
                preTokenizerRule = rule
            } else if let pre {
                warning = "unknown pre-tokenizer '\(pre)'; splitting text with the GPT-2 rule, so tokens may differ from the model's own"
                preTokenizerRule = .gpt2Rule
            } else {
                warning = "the file names no pre-tokenizer; using llama.cpp's default rule"
                preTokenizerRule = .defaultRule
            }
            addBOS = try m.contains("tokenizer.ggml.add_bos_token") ? m.bool("tokenizer.ggml.add_bos_token") : preTokenizerRule!.defaultAddBOS
            addSpacePrefix = try m.contains("tokenizer.ggml.add_space_prefix") ? m.bool("tokenizer.ggml.add_space_prefix") : false
        case .sentencePiece:
            preTokenizerName = try m.optionalString("tokenizer.ggml.pre")
            preTokenizerRule = nil
            addBOS = try m.contains("tokenizer.ggml.add_bos_token") ? m.bool("tokenizer.ggml.add_bos_token") : true
            addSpacePrefix = try m.contains("tokenizer.ggml.add_space_prefix") ? m.bool("tokenizer.ggml.add_space_prefix") : true
        }
        addEOS = try m.contains("tokenizer.ggml.add_eos_token") ? m.bool("tokenizer.ggml.add_eos_token") : false
        if addBOS && bos == nil {
            throw MoEError(.invalidFile, "the vocabulary asks for a BOS token but has no valid 'tokenizer.ggml.bos_token_id'")
        }
        if addEOS && eos == nil {
            throw MoEError(.invalidFile, "the vocabulary asks for an EOS token but has no valid 'tokenizer.ggml.eos_token_id'")
        }
        self.warning = warning
        chatTemplate = try m.optionalString("tokenizer.chat_template")

        var attrs = baseAttributes
        // llama.cpp recognises end-of-turn, fill-in-the-middle and end-of-generation markers by
        // their text and makes them control tokens even when the file says otherwise.
        for t in Vocabulary.controlByText { if let i = ids[Array(t.utf8)] { attrs[Int(i)].insert(.control) } }
        // Phi-3 style files strip whitespace after special tokens (llama.cpp keys this on the name).
        let name = (try m.optionalString("general.name"))?.lowercased() ?? ""
        let special = (0..<n).filter { !attrs[$0].isDisjoint(with: [.control, .userDefined, .unknown]) }
        if name.contains("phi-3") || name.contains("phi3") {
            for i in special { attrs[i].insert(.rstrip) }
            if let i = ids[Array("</s>".utf8)] { attrs[Int(i)].insert(.rstrip) }
            for t in ["<unk>", "<s>", "<|endoftext|>"] { if let i = ids[Array(t.utf8)] { attrs[Int(i)].remove(.rstrip) } }
        }
        attributes = attrs
        // Longest first; equal lengths by id, so the order is deterministic.
        specialTokens = special.sorted { a, b in
            let la = tokens[a].utf8.count, lb = tokens[b].utf8.count
            return la != lb ? la > lb : a < b
        }.map { Int32($0) }

        var eog = Set([eos, eot, eom].compactMap { $0 })
        for t in Vocabulary.endOfGenerationByText { if let i = ids[Array(t.utf8)] { eog.insert(i) } }
        endOfGeneration = eog
    }

    /// Token texts that end generation wherever they appear (llama.cpp's list).
    static let endOfGenerationByText = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<｜end▁of▁sentence｜>", "<|fim_pad|>", "<|fim_repo|>", "<|file_sep|>",
    ]

    /// Token texts llama.cpp treats as control tokens whatever their stored type: the
    /// end-of-generation markers and the fill-in-the-middle markers.
    static let controlByText = endOfGenerationByText + [
        "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
        "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
        "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>",
        "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
    ]

    /// Whether `id` names a token of this vocabulary.
    public func contains(_ id: Int32) -> Bool { id >= 0 && Int(id) < tokens.count }
}
