/// How a byte-level BPE vocabulary splits text into words before merging: an ordered list of
/// regular expressions (each one splits every piece the previous ones left, keeping both the
/// matches and the text between them) plus the flags llama.cpp attaches to the rule.
///
/// The rules are data: one `PreTokenizerRule` per family, with the `tokenizer.ggml.pre` names
/// that select it. The patterns are the ones llama.cpp uses for those names (regular
/// expressions are facts about the tokenizers, not code).
public struct PreTokenizerRule: Sendable {
    /// A short name for messages (`llama3`, `qwen2`, ...).
    public let family: String
    /// The `tokenizer.ggml.pre` values that select this rule.
    public let names: [String]
    /// The split patterns, applied in order.
    public let patterns: [String]
    /// Whether a word that is itself a token is emitted whole, skipping merges (Llama 3 style).
    public let ignoreMerges: Bool
    /// Whether the vocabulary adds a BOS token unless the file says otherwise.
    public let defaultAddBOS: Bool

    init(_ family: String, _ names: [String], _ patterns: [String], ignoreMerges: Bool = false, addBOS: Bool = false) {
        self.family = family
        self.names = names
        self.patterns = patterns
        self.ignoreMerges = ignoreMerges
        self.defaultAddBOS = addBOS
    }
}

extension PreTokenizerRule {
    // Pieces shared by several patterns.
    private static let contractions = #"'s|'t|'re|'ve|'m|'ll|'d"#
    private static let contractionsAnyCase = #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"#
    private static let gpt2 = contractions + #"| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
    private static func llama3Style(digits: String) -> String {
        contractionsAnyCase + #"|[^\r\n\p{L}\p{N}]?\p{L}+|"# + digits
            + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    }
    private static let gpt4oStyle = #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"# + contractionsAnyCase
        + #"?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"# + contractionsAnyCase
        + #"?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// llama.cpp's rule when a BPE file names no pre-tokenizer (`default`).
    public static let defaultRule = PreTokenizerRule("default", ["default"], [
        #"[\p{P}\$\+<=>\^~\|]+"#, gpt2, #"\p{N}+"#, "[0-9][0-9][0-9]",
    ])

    /// GPT-2's rule, also used when a file names a pre-tokenizer this table does not know.
    public static let gpt2Rule = PreTokenizerRule("gpt-2", [
        "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
        "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4", "mpt",
        "olmo", "jais", "trillion", "granite-docling",
    ], [gpt2])

    /// Every rule, looked up by `tokenizer.ggml.pre`.
    public static let all: [PreTokenizerRule] = [
        defaultRule,
        gpt2Rule,
        PreTokenizerRule("llama3", ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
                         [llama3Style(digits: #"\p{N}{1,3}"#)], ignoreMerges: true, addBOS: true),
        PreTokenizerRule("dbrx", ["dbrx", "smaug-bpe"], [llama3Style(digits: #"\p{N}{1,3}"#)]),
        PreTokenizerRule("chatglm4", ["chatglm-bpe"], [llama3Style(digits: #"\p{N}{1,3}"#)]),
        PreTokenizerRule("glm4", ["glm4", "glm5"], [llama3Style(digits: #"\p{N}{1,3}"#)], ignoreMerges: true),
        PreTokenizerRule("qwen2", ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "solar-open", "megrez"],
                         [llama3Style(digits: #"\p{N}"#)]),
        PreTokenizerRule("ufakzeka", ["ufakzeka"], [
            #"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        PreTokenizerRule("qwen35", ["qwen35"], [
            contractionsAnyCase + #"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        PreTokenizerRule("deepseek-llm", ["deepseek-llm"], [
            "[\r\n]",
            #"\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}\u{1F60}\u{1F61}\u{1F62}\u{1F63}\u{1F64}\u{1F65}\u{1F66}\u{1F67}\u{1F68}\u{1F69}\u{1F6A}\u{1F6B}\u{1F6C}\u{1F6D}\u{1F6E}\u{1F6F}\u{1F70}\u{1F71}\u{1F72}\u{1F73}\u{1F74}\u{1F75}\u{1F76}\u{1F77}\u{1F78}\u{1F79}\u{1F7A}\u{1F7B}\u{1F7C}\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}\u{1FD1}\u{1FD2}\u{1FD3}\u{1FD6}\u{1FD7}\u{1FD8}\u{1FD9}\u{1FDA}\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}\u{212B}\u{212C}\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+"#,
            #"\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+"#,
            #"\s+$"#,
            "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
            #"\p{N}+"#,
        ]),
        PreTokenizerRule("deepseek-coder", ["deepseek-coder"], [
            "[\r\n]", #"\s?\p{L}+"#, #"\s?\p{P}+"#, "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+", #"\p{N}"#,
        ]),
        PreTokenizerRule("deepseek-v3", ["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"], [
            #"\p{N}{1,3}"#, "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        ]),
        PreTokenizerRule("falcon", ["falcon"], [
            #"[\p{P}\$\+<=>\^~\|`]+"#, gpt2, "[0-9][0-9][0-9]",
        ]),
        PreTokenizerRule("starcoder", ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"], [
            #"\p{N}"#, gpt2,
        ]),
        PreTokenizerRule("bloom", ["bloom", "poro-chat", "gpt3-finnish"], [#" ?[^(\s|.,!?…。，、।۔،)]+"#]),
        PreTokenizerRule("viking", ["viking"], [#" ?[^(\s|.,!?…。，、।۔،)]+"#, #"\p{N}"#]),
        PreTokenizerRule("tekken", ["tekken"], [
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], ignoreMerges: true, addBOS: true),
        PreTokenizerRule("gpt-4o", ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], [gpt4oStyle]),
        PreTokenizerRule("chameleon", ["chameleon"], [
            "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", #"\p{N}"#,
            #"[\p{P}!-/:-@\[-`{-~]"#, gpt2,
        ], addBOS: true),
        PreTokenizerRule("bailingmoe", ["bailingmoe", "bailingmoe2", "llada-moe"], [
            #"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ]),
        PreTokenizerRule("seed-coder", ["seed-coder"], [
            contractionsAnyCase + #"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
    ]

    /// The rule for a `tokenizer.ggml.pre` value: nil when the table does not know the name.
    public static func named(_ name: String) -> PreTokenizerRule? {
        all.first { $0.names.contains(name) }
    }
}

/// A compiled pre-tokenizer: splits text into the words that BPE merges within.
final class PreTokenizer: @unchecked Sendable {
    // Regex values are immutable and matching does not mutate them; sharing is safe.
    let rule: PreTokenizerRule
    private let regexes: [Regex<AnyRegexOutput>]

    init(_ rule: PreTokenizerRule) throws(MoEError) {
        self.rule = rule
        var compiled: [Regex<AnyRegexOutput>] = []
        for p in rule.patterns {
            do {
                compiled.append(try Regex(p).matchingSemantics(.unicodeScalar))
            } catch {
                throw MoEError(.internal, "pre-tokenizer '\(rule.family)': pattern does not compile: \(error)")
            }
        }
        regexes = compiled
    }

    /// Splits `text` into words: each pattern splits every piece left by the previous ones into
    /// its matches and the stretches between them (nothing is dropped).
    func split(_ text: Substring) -> [Substring] {
        var pieces: [Substring] = text.isEmpty ? [] : [text]
        for regex in regexes {
            var next: [Substring] = []
            next.reserveCapacity(pieces.count * 2)
            for piece in pieces {
                // Each piece is matched as a string of its own: anchors and look-arounds stop at its ends.
                let s = String(piece)
                var start = s.startIndex
                for m in s.matches(of: regex) where !m.range.isEmpty {
                    if m.range.lowerBound > start { next.append(Substring(s.unicodeScalars[start..<m.range.lowerBound])) }
                    next.append(Substring(s.unicodeScalars[m.range]))
                    start = m.range.upperBound
                }
                if start < s.endIndex { next.append(Substring(s.unicodeScalars[start...])) }
            }
            pieces = next
        }
        return pieces
    }
}

/// GPT-2's reversible map between bytes and printable characters used by byte-level BPE
/// vocabularies: printable Latin-1 bytes stand for themselves, the others for U+0100 onwards.
enum ByteLevel {
    /// The character for each byte value, as UTF-8 bytes.
    static let encode: [[UInt8]] = {
        var table = [[UInt8]](repeating: [], count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            let scalar: UInt32
            if printable {
                scalar = UInt32(b)
            } else {
                scalar = next
                next += 1
            }
            table[b] = Array(String(Unicode.Scalar(scalar)!).utf8)
        }
        return table
    }()

    /// The byte for each character of the map.
    static let decode: [Unicode.Scalar: UInt8] = {
        var table: [Unicode.Scalar: UInt8] = [:]
        for b in 0..<256 {
            let s = String(decoding: encode[b], as: UTF8.self).unicodeScalars.first!
            table[s] = UInt8(b)
        }
        return table
    }()
}
