extension ArchitectureSpec {
    /// `qwen3moe` (Qwen3-30B-A3B, Qwen3-235B-A22B): per-head q/k RMSNorm, NeoX RoPE, GQA, routed
    /// experts only, top-k weights renormalised.
    public static let qwen3moe = ArchitectureSpec(
        name: "qwen3moe", rope: .neox, qkNorm: .perHead, feedForward: .experts,
        router: .init(gating: .softmax, normalizeTopK: true))
}
