/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user` or `assistant`.
    public var role: String
    /// The text of the turn.
    public var content: String

    /// A message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A chat prompt format, recognised from the file's `tokenizer.chat_template` text the way
/// llama.cpp recognises it, and rendered natively (no Jinja interpreter): the formats that MoE
/// models use plus their close relatives.
public enum ChatTemplate: String, Sendable, CaseIterable {
    /// `<|im_start|>role\n...<|im_end|>\n` (Qwen, Qwen-MoE, many fine-tunes).
    case chatml
    /// `<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>` (Llama 3).
    case llama3
    /// ` [INST] ... [/INST]` with a leading space (Mistral v1, Mixtral-8x7B-Instruct).
    case mistralV1 = "mistral-v1"
    /// `[INST] ... [/INST]` (Mistral v3, Mixtral-8x22B-Instruct).
    case mistralV3 = "mistral-v3"
    /// `[INST]...[/INST]` without spaces (Mistral v3 Tekken).
    case mistralV3Tekken = "mistral-v3-tekken"
    /// `[SYSTEM_PROMPT] ...[/SYSTEM_PROMPT][INST] ...[/INST]` (Mistral v7).
    case mistralV7 = "mistral-v7"
    /// `[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST]` (Llama 2 chat).
    case llama2 = "llama2-sys"
    /// `<|user|>\n...\n<|assistant|>\n...<|endoftext|>` (OLMoE-Instruct, Tulu).
    case tulu
    /// `<|user|>\n...<|endoftext|>\n` (Zephyr).
    case zephyr
    /// `<|user|>\n...<|end|>\n` (Phi-3, Phi-3.5-MoE).
    case phi3
    /// `### Instruction:\n...\n### Response:\n` (DeepSeek Coder).
    case deepseek
    /// `User: ...\n\nAssistant:` (DeepSeek-V2, DeepSeek-MoE chat).
    case deepseek2
    /// `<｜User｜>...<｜Assistant｜>` (DeepSeek-V3).
    case deepseek3
    /// `<start_of_turn>user\n...<end_of_turn>\n` (Gemma).
    case gemma

    /// The format a template text uses, or nil when it is not one of these. A template that is
    /// exactly a format's name selects it.
    public static func detect(_ template: String) -> ChatTemplate? {
        if let t = ChatTemplate(rawValue: template) { return t }
        if template == "llama2" || template == "llama2-sys-strip" || template == "llama2-sys-bos" { return .llama2 }
        func has(_ s: String) -> Bool { template.contains(s) }
        if has("<|im_start|>") { return has("<|im_sep|>") || has("<end_of_utterance>") ? nil : .chatml }
        if template.hasPrefix("mistral") || has("[INST]") {
            if has("[SYSTEM_PROMPT]") { return .mistralV7 }
            if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
                if has(" [INST]") { return .mistralV1 }
                if has("\"[INST]\"") { return .mistralV3Tekken }
                return .mistralV3
            }
            // Llama 2 and its variants; only the plain system-prompt form is rendered.
            return has("<<SYS>>") && !has("content.strip()") && !has("bos_token + '[INST]") ? .llama2 : nil
        }
        if has("<|assistant|>") && has("<|end|>") { return .phi3 }
        // OLMoE-Instruct / Tulu (llama.cpp's non-Jinja detector takes this for GLM-Edge; its
        // Jinja renderer, like us, follows the template).
        if has("<|user|>") && has("<|assistant|>") && has("eos_token") && !has("</s>") { return .tulu }
        if has("<|user|>") && has("<|endoftext|>") { return .zephyr }
        if has("<start_of_turn>") { return .gemma }
        if has("### Instruction:") && has("<|EOT|>") { return .deepseek }
        if has("'Assistant: ' + message['content'] + eos_token") { return .deepseek2 }
        if has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>") { return .deepseek3 }
        if has("<|start_header_id|>") && has("<|end_header_id|>") { return .llama3 }
        return nil
    }

    /// The format for a vocabulary: `name` when given (a format name), else detected from the
    /// file's template. Throws a message that lists the `--chat-template` choices.
    public static func resolve(name: String?, vocabulary: Vocabulary) throws(MoEError) -> ChatTemplate {
        let choices = ChatTemplate.allCases.map(\.rawValue).joined(separator: ", ")
        if let name {
            guard let t = ChatTemplate(rawValue: name) else {
                throw MoEError(.invalidArgument, "unknown chat template '\(name)'; choose one of: \(choices)")
            }
            return t
        }
        guard let text = vocabulary.chatTemplate else {
            throw MoEError(.notFound, "the model has no chat template (tokenizer.chat_template); pass --chat-template with one of: \(choices)")
        }
        guard let t = detect(text) else {
            throw MoEError(.unsupported, "the model's chat template is not one swift-moe recognises; pass --chat-template with one of: \(choices)")
        }
        return t
    }

    /// The prompt text for `messages`; with `addAssistant`, ends with the opening of the
    /// assistant's reply. Special-token text in the result is meant to be parsed as tokens.
    public func render(_ messages: [ChatMessage], addAssistant: Bool = true, eos: String = "</s>") -> String {
        var s = ""
        switch self {
        case .chatml:
            for m in messages { s += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addAssistant { s += "<|im_start|>assistant\n" }
        case .llama3:
            for m in messages { s += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(trim(m.content))<|eot_id|>" }
            if addAssistant { s += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        case .mistralV7:
            for m in messages {
                switch m.role {
                case "system": s += "[SYSTEM_PROMPT] \(m.content)[/SYSTEM_PROMPT]"
                case "user": s += "[INST] \(m.content)[/INST]"
                default: s += " \(m.content)</s>"
                }
            }
        case .mistralV1, .mistralV3, .mistralV3Tekken:
            let lead = self == .mistralV1 ? " " : ""
            let trail = self == .mistralV3Tekken ? "" : " "
            var inside = false
            for m in messages {
                if !inside {
                    s += lead + "[INST]" + trail
                    inside = true
                }
                switch m.role {
                case "system": s += m.content + "\n\n"
                case "user": s += m.content + lead + "[/INST]"
                default:
                    s += trail + (self == .mistralV3 ? trim(m.content) : m.content) + "</s>"
                    inside = false
                }
            }
        case .llama2:
            var inside = true
            s += "[INST] "
            for m in messages {
                if !inside {
                    inside = true
                    s += "[INST] "
                }
                switch m.role {
                case "system": s += "<<SYS>>\n\(m.content)\n<</SYS>>\n\n"
                case "user": s += m.content + " [/INST]"
                default:
                    s += m.content + "</s>"
                    inside = false
                }
            }
        case .tulu:
            for (i, m) in messages.enumerated() {
                let last = i == messages.count - 1
                switch m.role {
                case "system": s += "<|system|>\n\(m.content)\n"
                case "user": s += "<|user|>\n\(m.content)\n"
                default: s += "<|assistant|>\n\(m.content)\(eos)" + (last ? "" : "\n")
                }
            }
            if addAssistant { s += "<|assistant|>\n" }
        case .zephyr:
            for m in messages { s += "<|\(m.role)|>\n\(m.content)<|endoftext|>\n" }
            if addAssistant { s += "<|assistant|>\n" }
        case .phi3:
            for m in messages { s += "<|\(m.role)|>\n\(m.content)<|end|>\n" }
            if addAssistant { s += "<|assistant|>\n" }
        case .deepseek:
            for m in messages {
                switch m.role {
                case "system": s += m.content
                case "user": s += "### Instruction:\n\(m.content)\n"
                default: s += "### Response:\n\(m.content)\n<|EOT|>\n"
                }
            }
            if addAssistant { s += "### Response:\n" }
        case .deepseek2:
            for m in messages {
                switch m.role {
                case "system": s += m.content + "\n\n"
                case "user": s += "User: \(m.content)\n\n"
                default: s += "Assistant: \(m.content)<｜end▁of▁sentence｜>"
                }
            }
            if addAssistant { s += "Assistant:" }
        case .deepseek3:
            for m in messages {
                switch m.role {
                case "system": s += m.content + "\n\n"
                case "user": s += "<｜User｜>" + m.content
                default: s += "<｜Assistant｜>" + m.content + "<｜end▁of▁sentence｜>"
                }
            }
            if addAssistant { s += "<｜Assistant｜>" }
        case .gemma:
            var system = ""
            for m in messages {
                if m.role == "system" {
                    system += trim(m.content)
                    continue
                }
                let role = m.role == "assistant" ? "model" : m.role
                s += "<start_of_turn>\(role)\n"
                if !system.isEmpty && role != "model" {
                    s += system + "\n\n"
                    system = ""
                }
                s += trim(m.content) + "<end_of_turn>\n"
            }
            if addAssistant { s += "<start_of_turn>model\n" }
        }
        return s
    }

    /// Leading and trailing ASCII whitespace removed (llama.cpp's `trim`).
    private func trim(_ s: String) -> String {
        let ws: Set<Character> = [" ", "\t", "\n", "\r", "\u{0B}", "\u{0C}"]
        var sub = Substring(s)
        while let f = sub.first, ws.contains(f) { sub.removeFirst() }
        while let l = sub.last, ws.contains(l) { sub.removeLast() }
        return String(sub)
    }
}
