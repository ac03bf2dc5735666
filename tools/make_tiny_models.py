#!/usr/bin/env python3
"""Writes tiny random-weight MoE models under Tests/Fixtures/models with the `gguf` PyPI package.

They have the exact tensor names, shapes and metadata keys llama.cpp expects for each
architecture, at toy sizes (a few hundred KB), so that `moe info` and the loaders can be tested
on files swift-moe did not write itself.

  tiny-qwen3moe-q8_0.gguf   qwen3moe: 2 layers, d_model 64, 4 heads / 2 KV heads, head dim 16,
                            8 experts, top-2, expert FFN 32, per-head q/k norms, Q8_0 weights
  tiny-mixtral-q4_0.gguf    llama with experts (Mixtral layout): 2 layers, d_model 64, 4 experts,
                            top-2, expert FFN 64, tied output head, Q4_0 weights

Usage: python3 tools/make_tiny_models.py [--out Tests/Fixtures]
"""
import argparse
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

from fixture_common import byte_vocab, finish

SEED = 7


def weights(rng, shape, qtype, scale=0.5):
    """Random weights in numpy (outermost-first) shape, quantized by gguf-py."""
    x = (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)
    if qtype == T.F32:
        return x, None
    return np.ascontiguousarray(gguf.quants.quantize(x, qtype)).view(np.uint8), qtype


def add(w, name, arr_and_type):
    arr, qtype = arr_and_type
    if qtype is None:
        w.add_tensor(name, arr)
    else:
        w.add_tensor(name, arr, raw_dtype=qtype)


def norm(rng, n):
    return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32), None


def tokenizer(w, specials):
    tokens = byte_vocab() + specials
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([1] * 256 + [3] * len(specials))
    w.add_token_merges(["Ġ t", "h e", "i n"])
    w.add_bos_token_id(256)
    w.add_eos_token_id(256)
    return len(tokens)


def qwen3moe(path, rng):
    L, D, H, KV, HD, E, K, F = 2, 64, 4, 2, 16, 8, 2, 32
    w = gguf.GGUFWriter(path, arch="qwen3moe")
    w.add_name("tiny-qwen3moe")
    w.add_block_count(L)
    w.add_context_length(256)
    w.add_embedding_length(D)
    w.add_feed_forward_length(F * 2)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(HD)
    w.add_value_length(HD)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_expert_count(E)
    w.add_expert_used_count(K)
    w.add_expert_feed_forward_length(F)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = tokenizer(w, specials)
    w.add_chat_template("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    q = T.Q8_0
    add(w, "token_embd.weight", weights(rng, (vocab, D), q, 1.0))
    add(w, "output_norm.weight", norm(rng, D))
    add(w, "output.weight", weights(rng, (vocab, D), q))
    for i in range(L):
        p = f"blk.{i}."
        add(w, p + "attn_norm.weight", norm(rng, D))
        add(w, p + "attn_q.weight", weights(rng, (H * HD, D), q))
        add(w, p + "attn_k.weight", weights(rng, (KV * HD, D), q))
        add(w, p + "attn_v.weight", weights(rng, (KV * HD, D), q))
        add(w, p + "attn_output.weight", weights(rng, (D, H * HD), q))
        add(w, p + "attn_q_norm.weight", norm(rng, HD))
        add(w, p + "attn_k_norm.weight", norm(rng, HD))
        add(w, p + "ffn_norm.weight", norm(rng, D))
        add(w, p + "ffn_gate_inp.weight", weights(rng, (E, D), T.F32, 2.0))
        add(w, p + "ffn_gate_exps.weight", weights(rng, (E, F, D), q))
        add(w, p + "ffn_up_exps.weight", weights(rng, (E, F, D), q))
        add(w, p + "ffn_down_exps.weight", weights(rng, (E, D, F), q))
    finish(w)


def mixtral(path, rng):
    L, D, H, KV, E, K, F = 2, 64, 4, 2, 4, 2, 64
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("tiny-mixtral")
    w.add_block_count(L)
    w.add_context_length(256)
    w.add_embedding_length(D)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(D // H)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_expert_count(E)
    w.add_expert_used_count(K)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    vocab = tokenizer(w, ["<s>", "</s>"])
    q = T.Q4_0
    add(w, "token_embd.weight", weights(rng, (vocab, D), q, 1.0))
    add(w, "output_norm.weight", norm(rng, D))
    for i in range(L):
        p = f"blk.{i}."
        add(w, p + "attn_norm.weight", norm(rng, D))
        add(w, p + "attn_q.weight", weights(rng, (D, D), q))
        add(w, p + "attn_k.weight", weights(rng, (KV * D // H, D), q))
        add(w, p + "attn_v.weight", weights(rng, (KV * D // H, D), q))
        add(w, p + "attn_output.weight", weights(rng, (D, D), q))
        add(w, p + "ffn_norm.weight", norm(rng, D))
        add(w, p + "ffn_gate_inp.weight", weights(rng, (E, D), T.F32, 2.0))
        add(w, p + "ffn_gate_exps.weight", weights(rng, (E, F, D), q))
        add(w, p + "ffn_up_exps.weight", weights(rng, (E, F, D), q))
        add(w, p + "ffn_down_exps.weight", weights(rng, (E, D, F), q))
    finish(w)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures"))
    args = ap.parse_args()
    out = os.path.join(args.out, "models")
    os.makedirs(out, exist_ok=True)
    qwen3moe(os.path.join(out, "tiny-qwen3moe-q8_0.gguf"), np.random.default_rng(SEED))
    mixtral(os.path.join(out, "tiny-mixtral-q4_0.gguf"), np.random.default_rng(SEED + 1))
    for name in sorted(os.listdir(out)):
        print(f"{os.path.join(out, name)}: {os.path.getsize(os.path.join(out, name))} bytes")


if __name__ == "__main__":
    sys.exit(main())
