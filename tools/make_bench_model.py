#!/usr/bin/env python3
"""Generates a large random-weight MoE model for benchmarks (never committed).

Geometries:
  olmoe      OLMoE-1B-7B: 16 layers, d_model 2048, 16 heads (no GQA), 64 experts, top-8,
             expert FFN 1024, vocab 50304 — 6.9 B parameters (Q4_0 3.9 GB, Q8_0 7.3 GB)
  qwen3moe   Qwen3-30B-A3B: 48 layers, d_model 2048, 32 heads / 4 KV heads, head dim 128,
             128 experts, top-8, expert FFN 768, vocab 151936 — 30.5 B parameters (Q4_0 17 GB)

Weights are random quantized blocks (uniform levels, scales chosen so each weight has standard
deviation ~ 1/sqrt(fan_in)); norms are 1 and routers F32, as llama.cpp keeps them. The file is
written one tensor at a time, so memory use stays near the largest tensor (~300 MB).

Types: Q4_0, Q8_0 and Q4_K make every matrix that type. Q4_K_M and Q5_K_M mix types as llama.cpp's
`llama-quantize ... Q4_K_M` / `Q5_K_M` do for these geometries: Q6_K for the output matrix, and
for attn_v and ffn_down(_exps) in the layers that get more bits (the first and last eighth, and
every third in between), Q4_K / Q5_K for everything else.

Usage: python3 tools/make_bench_model.py olmoe Q4_0 bench-models/olmoe-q4_0.gguf
"""
import argparse
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

from fixture_common import byte_vocab

GEOMETRIES = {
    "olmoe": dict(arch="olmoe", layers=16, d=2048, heads=16, kv=16, hd=128, experts=64, used=8, eff=1024,
                  vocab=50304, qk_norm="whole", ctx=4096),
    "qwen3moe": dict(arch="qwen3moe", layers=48, d=2048, heads=32, kv=4, hd=128, experts=128, used=8, eff=768,
                     vocab=151936, qk_norm="head", ctx=40960),
}


def random_blocks(rng, qtype, rows, cols):
    """rows x cols weights of `qtype` as raw blocks, each weight ~ 1/sqrt(cols) in spread."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    target = 1.0 / np.sqrt(cols)
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype == T.Q4_0:
        # Levels 0..15 minus 8 average -0.5: every matrix would add the same direction to every
        # output and the residual stream (so the routing) would stop depending on the token.
        # Nibble 0 becomes 8 (the zero level), so the levels average exactly 0.
        lo, hi = raw & 0x0F, raw >> 4
        lo = np.where(lo == 0, 8, lo).astype(np.uint8)
        hi = np.where(hi == 0, 8, hi).astype(np.uint8)
        raw = (lo | (hi << 4)).astype(np.uint8)
        level_std = 4.18  # levels -7..7 plus a double share of 0
    elif qtype == T.Q8_0:
        level_std = 73.9  # int8 levels uniform over -128..127
    elif qtype == T.Q4_K:
        level_std = 4.61 * 36.4  # nibble levels times random 6-bit sub-block scales (rms ~36)
    elif qtype == T.Q5_K:
        level_std = 9.23 * 36.4  # 5-bit levels times random 6-bit sub-block scales
    elif qtype == T.Q6_K:
        level_std = 18.5 * 73.9  # levels -32..31 times random int8 sub-block scales (rms ~74)
    else:
        raise SystemExit(f"{qtype.name} is not supported by this generator (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K are)")
    d = (target / level_std * rng.uniform(0.8, 1.2, size=n_blocks)).astype(np.float16)
    if qtype == T.Q6_K:  # the super-block scale is the last field
        raw[:, 208:210] = d.view(np.uint8).reshape(n_blocks, 2)
        return raw.reshape(rows, cols // block * size)
    raw[:, 0:2] = d.view(np.uint8).reshape(n_blocks, 2)
    if qtype in (T.Q4_K, T.Q5_K):  # dmin: the sub-block minimums pull values back towards zero
        # A weight is d·scale·level - dmin·min, with scale and min both uniform over 0..63 (mean
        # 31.5), so dmin = d·(mean level) makes the weights average 0. (dmin was once d·mean·36.4/31.5,
        # the scales' rms over the minimums' mean: every weight then averaged -0.22 standard
        # deviations, every matrix added the same direction, and four random sequences shared
        # experts far more than on the Q4_0 file: 12 of 64 per layer and step against 27.)
        mean_level = 7.5 if qtype == T.Q4_K else 15.5
        raw[:, 2:4] = (d.astype(np.float32) * mean_level).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("geometry", choices=sorted(GEOMETRIES))
    ap.add_argument("type", choices=["Q4_0", "Q8_0", "Q4_K", "Q4_K_M", "Q5_K_M"])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    g = GEOMETRIES[args.geometry]
    mixed = args.type in ("Q4_K_M", "Q5_K_M")
    qtype = {"Q4_K_M": T.Q4_K, "Q5_K_M": T.Q5_K}[args.type] if mixed else getattr(T, args.type)
    layers = g["layers"]

    def more_bits(i):  # llama.cpp's rule for the layers whose attn_v and ffn_down get Q6_K
        return i < layers // 8 or i >= 7 * layers // 8 or (i - layers // 8) % 3 == 2

    def type_of(name):
        if not mixed:
            return qtype
        if name == "output.weight":
            return T.Q6_K
        if name.endswith(("attn_v.weight", "ffn_down_exps.weight")) and more_bits(int(name.split(".")[1])):
            return T.Q6_K
        return qtype
    rng = np.random.default_rng(args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    w = gguf.GGUFWriter(args.out, arch=g["arch"])
    w.add_name(f"bench-{args.geometry}-{args.type.lower()}")
    w.add_block_count(g["layers"])
    w.add_context_length(g["ctx"])
    w.add_embedding_length(g["d"])
    w.add_feed_forward_length(g["eff"])
    w.add_head_count(g["heads"])
    w.add_head_count_kv(g["kv"])
    w.add_key_length(g["hd"])
    w.add_value_length(g["hd"])
    w.add_rope_freq_base(10000.0 if g["arch"] == "olmoe" else 1000000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_expert_count(g["experts"])
    w.add_expert_used_count(g["used"])
    if g["arch"] != "olmoe":
        w.add_expert_feed_forward_length(g["eff"])
    w.add_file_type({"Q4_K_M": gguf.LlamaFileType.MOSTLY_Q4_K_M, "Q5_K_M": gguf.LlamaFileType.MOSTLY_Q5_K_M}[args.type] if mixed else
                    {T.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0, T.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
                     T.Q4_K: gguf.LlamaFileType.MOSTLY_Q4_K_S}[qtype])
    tokens = byte_vocab() + [f"tok{i}" for i in range(g["vocab"] - 256 - 1)] + ["<|endoftext|>"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([1] * (len(tokens) - 1) + [3])
    w.add_token_merges(["Ġ t"])
    w.add_eos_token_id(len(tokens) - 1)

    D, H, KV, HD, E, F, V = g["d"], g["heads"], g["kv"], g["hd"], g["experts"], g["eff"], g["vocab"]
    plan = []  # (name, numpy shape, kind)
    plan.append(("token_embd.weight", (V, D), "q"))
    plan.append(("output_norm.weight", (D,), "ones"))
    plan.append(("output.weight", (V, D), "q"))
    for i in range(g["layers"]):
        p = f"blk.{i}."
        plan += [(p + "attn_norm.weight", (D,), "ones"), (p + "attn_q.weight", (H * HD, D), "q"),
                 (p + "attn_k.weight", (KV * HD, D), "q"), (p + "attn_v.weight", (KV * HD, D), "q"),
                 (p + "attn_output.weight", (D, H * HD), "q")]
        if g["qk_norm"] == "whole":
            plan += [(p + "attn_q_norm.weight", (H * HD,), "ones"), (p + "attn_k_norm.weight", (KV * HD,), "ones")]
        else:
            plan += [(p + "attn_q_norm.weight", (HD,), "ones"), (p + "attn_k_norm.weight", (HD,), "ones")]
        plan += [(p + "ffn_norm.weight", (D,), "ones"), (p + "ffn_gate_inp.weight", (E, D), "f32"),
                 (p + "ffn_gate_exps.weight", (E, F, D), "q"), (p + "ffn_up_exps.weight", (E, F, D), "q"),
                 (p + "ffn_down_exps.weight", (E, D, F), "q")]
    for name, shape, kind in plan:
        if kind == "q":
            block, size = gguf.GGML_QUANT_SIZES[type_of(name)]
            byte_shape = (*shape[:-1], shape[-1] // block * size)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=type_of(name))
        else:
            w.add_tensor_info(name, shape, np.dtype(np.float32), int(np.prod(shape)) * 4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    total = 0
    for name, shape, kind in plan:
        if kind == "q":
            rows = int(np.prod(shape[:-1]))
            data = random_blocks(rng, type_of(name), rows, shape[-1]).reshape(*shape[:-1], -1)
        elif kind == "ones":
            data = np.ones(shape, dtype=np.float32)
        else:
            data = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        w.write_tensor_data(data)
        total += data.nbytes
    w.close()
    print(f"{args.out}: {os.path.getsize(args.out) / 2**30:.2f} GiB, {len(plan)} tensors")


if __name__ == "__main__":
    sys.exit(main())
