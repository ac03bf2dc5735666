import MoE

/// `moe info MODEL [--json]`: describes a GGUF model without reading its tensor data.
enum InfoCommand {
    static let usage = """
        usage: moe info MODEL [--json]

        Describes a GGUF model: architecture, hyperparameters, tokenizer, tensor types, and how
        its bytes split between routed experts and the rest, including the bytes one decoded
        token touches. Reads only the file's header. MODEL may also come from MOE_MODEL.

          --json   print one JSON object instead of text
        """

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let parsed = try Arguments(args, valued: ["--model"], flags: ["--json", "--help"], aliases: ["-m": "--model", "-h": "--help"])
        if parsed.flags.contains("--help") {
            print(usage)
            return 0
        }
        guard parsed.positionals.count <= 1 else { throw UsageError(message: "moe info takes one MODEL") }
        guard let path = parsed.positionals.first ?? parsed.values["--model"] ?? environment["MOE_MODEL"] else {
            throw UsageError(message: "moe info needs a MODEL (or MOE_MODEL)")
        }
        let file = try GGUFFile(path: path)
        let summary = ModelSummary(file: file)
        if parsed.flags.contains("--json") {
            print(summary.json.serialized(indent: 2))
        } else {
            print(text(summary))
        }
        return 0
    }

    static func text(_ s: ModelSummary) -> String {
        func v(_ x: Int?) -> String { x.map(String.init) ?? "-" }
        var lines: [String] = []
        func row(_ label: String, _ value: String) {
            lines.append("  " + label.padding(13) + value)
        }
        lines.append("\(s.name ?? "(unnamed)") — \(s.architecture ?? "unknown architecture") — \(s.path)")
        row("file", "\(formatBytes(s.fileBytes)), GGUF v\(s.version), \(s.tensorCount) tensors, \(formatCount(s.parameterCount)) parameters")
        row("layers", "\(v(s.layers)), d_model \(v(s.embeddingLength)), heads \(v(s.headCount)) (\(v(s.headCountKV)) KV), head dim \(v(s.headDimension))")
        var rope = "context \(v(s.contextLength))"
        if let base = s.ropeFreqBase { rope += ", rope base \(fixed(base, base == base.rounded() ? 0 : 2))" }
        if let dims = s.ropeDimensions { rope += ", rope dims \(dims)" }
        rope += ", rope scaling \(s.ropeScaling ?? "none")"
        row("attention", rope)
        if let n = s.expertCount, n > 0 {
            var experts = "\(n) routed, \(v(s.expertUsedCount)) used per token, expert FFN \(v(s.expertFeedForwardLength))"
            if let shared = s.sharedExpertCount { experts += ", \(shared) shared" }
            row("experts", experts)
        } else {
            row("experts", "none (dense), FFN \(v(s.feedForwardLength))")
        }
        var tok = s.tokenizerModel.map { "\($0)" } ?? "none"
        if let pre = s.tokenizerPre { tok += " (pre \(pre))" }
        tok += ", \(v(s.vocabularySize)) tokens, chat template \(s.hasChatTemplate ? "yes" : "no")"
        row("tokenizer", tok)
        for (i, u) in s.types.enumerated() {
            row(i == 0 ? "types" : "", "\(u.type.name.padding(7)) \(String(u.tensors).leftPadding(4)) tensors  \(formatBytes(u.bytes).leftPadding(11))")
        }
        let total = max(s.tensorBytes, 1)
        row("bytes", "\(formatBytes(s.tensorBytes)) = routed experts \(formatBytes(s.routedExpertBytes)) (\(percent(s.routedExpertBytes, total))) + other \(formatBytes(s.tensorBytes - s.routedExpertBytes))")
        row("per token", "\(formatBytes(s.activeBytesPerToken)) read when decoding one token (\(percent(s.activeBytesPerToken, total)) of the weights), \(formatCount(s.activeParameters)) active parameters")
        return lines.joined(separator: "\n")
    }

    static func percent(_ part: Int, _ whole: Int) -> String {
        fixed(100 * Double(part) / Double(whole), 1) + "%"
    }
}

extension String {
    /// The string padded with spaces on the right to `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }

    /// The string padded with spaces on the left to `width` characters.
    func leftPadding(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
