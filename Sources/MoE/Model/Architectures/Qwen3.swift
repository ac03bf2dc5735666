extension ArchitectureSpec {
    /// `qwen3` (dense Qwen3): per-head q/k RMSNorm, NeoX RoPE, SwiGLU.
    public static let qwen3 = ArchitectureSpec(name: "qwen3", rope: .neox, qkNorm: .perHead, feedForward: .dense)
}
