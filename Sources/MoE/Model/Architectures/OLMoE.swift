extension ArchitectureSpec {
    /// `olmoe` (OLMoE-1B-7B): RMSNorm over the whole q and k projections, NeoX RoPE, 64 experts
    /// top-8, top-k weights used as the softmax gave them (not renormalised).
    public static let olmoe = ArchitectureSpec(
        name: "olmoe", rope: .neox, qkNorm: .wholeProjection, feedForward: .experts,
        router: .init(gating: .softmax, normalizeTopK: false))
}
