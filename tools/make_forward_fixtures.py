#!/usr/bin/env python3
"""Reference data for the forward pass: tiny random-weight models of every supported architecture
and what llama.cpp (through llama-cpp-python) computes on them.

For each architecture and weight type it writes, under Tests/Fixtures/forward/:
  NAME.gguf         the model (F16, Q8_0 and Q4_0 written by gguf-py; Q4_K_M made from an F32
                    file by llama.cpp's own quantizer, so it holds Q4_K and Q6_K tensors)
  NAME.logits.f32   llama.cpp's logits at every prompt position (n_prompt x n_vocab, float32 LE),
                    with the prompt fed one token at a time (llama.cpp's decode path; its batched
                    prompt path can round differently, recorded as llama_batch_path_deviation)
and one index, forward/references.json, with the prompt, llama.cpp's 32-token greedy
continuation, and the logits' spread per model. Weights are scaled so that the greedy path has a
clear margin between the best and second-best token (checked; the seed moves on if not).

Usage: python3 tools/make_forward_fixtures.py [--out Tests/Fixtures]
Needs: pip install -r tools/requirements.txt llama-cpp-python==0.3.36
"""
import argparse
import ctypes
import importlib.metadata
import json
import os
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

from fixture_common import byte_vocab, finish

import llama_cpp

PROMPT = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33]
GREEDY = 32
MARGIN = 0.02  # the smallest (top1 - top2) / std along the greedy path we accept (our measured error is ~0.001)


ARCHS = {
    # name: geometry and features
    "qwen3moe": dict(arch="qwen3moe", moe=True, qk_norm="head", rope_dims=False, bias=False, shared=False, tied=False),
    "mixtral": dict(arch="llama", moe=True, qk_norm=None, rope_dims=True, bias=False, shared=False, tied=True),
    "olmoe": dict(arch="olmoe", moe=True, qk_norm="whole", rope_dims=False, bias=False, shared=False, tied=False,
                  mha=True),  # OLMoE has no GQA: llama.cpp sizes its k norm by n_embd
    "qwen2moe": dict(arch="qwen2moe", moe=True, qk_norm=None, rope_dims=False, bias=True, shared=True, tied=False),
    "llama": dict(arch="llama", moe=False, qk_norm=None, rope_dims=True, bias=False, shared=False, tied=False),
    "qwen3": dict(arch="qwen3", moe=False, qk_norm="head", rope_dims=False, bias=False, shared=False, tied=False),
}


def build(path, spec, rng, wtype, geometry, scaling=None):
    L, D, H, KV, E, K, F = geometry
    if spec.get("mha"):
        KV = H
    HD = D // H
    arch = spec["arch"]
    w = gguf.GGUFWriter(path, arch=arch)
    w.add_name(f"fixture-{arch}")
    w.add_block_count(L)
    w.add_context_length(128)
    w.add_embedding_length(D)
    mixtral_layout = arch in ("llama", "olmoe") and spec["moe"]  # these size experts by feed_forward_length
    w.add_feed_forward_length(F if mixtral_layout else 2 * F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    if spec["rope_dims"]:
        w.add_rope_dimension_count(HD)
    w.add_rope_freq_base(10000.0)
    if scaling == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(4.0)
    elif scaling == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(4.0)
        w.add_rope_scaling_orig_ctx_len(32)
    w.add_layer_norm_rms_eps(1e-6)
    if spec["moe"]:
        w.add_expert_count(E)
        w.add_expert_used_count(K)
        if not mixtral_layout:
            w.add_expert_feed_forward_length(F)
    if spec["shared"]:
        w.add_expert_shared_feed_forward_length(F)
    tokens = byte_vocab() + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([1] * 256 + [3] * 3)
    w.add_token_merges(["Ġ t", "h e"])
    w.add_bos_token_id(256)
    w.add_eos_token_id(256)
    V = len(tokens)

    def mat(name, shape, scale=1.0):
        x = (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)
        if wtype == T.F32:
            w.add_tensor(name, x)
        elif wtype == T.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            w.add_tensor(name, np.ascontiguousarray(gguf.quants.quantize(x, wtype)).view(np.uint8), raw_dtype=wtype)

    def vec(name, n, around=1.0, spread=0.2):
        w.add_tensor(name, (around + spread * rng.standard_normal(n)).astype(np.float32))

    # A tied head reads the embedding table: keep it small so the layers, not the input token, decide.
    mat("token_embd.weight", (V, D), (0.5 if spec["tied"] else 4.0) * np.sqrt(D))
    vec("output_norm.weight", D)
    if not spec["tied"]:
        mat("output.weight", (V, D), 6.0)
    for i in range(L):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", D)
        mat(p + "attn_q.weight", (H * HD, D), 2.0)
        mat(p + "attn_k.weight", (KV * HD, D), 2.0)
        mat(p + "attn_v.weight", (KV * HD, D))
        mat(p + "attn_output.weight", (D, H * HD))
        if spec["bias"]:
            vec(p + "attn_q.bias", H * HD, 0.0, 0.3)
            vec(p + "attn_k.bias", KV * HD, 0.0, 0.3)
            vec(p + "attn_v.bias", KV * HD, 0.0, 0.3)
        if spec["qk_norm"] == "head":
            vec(p + "attn_q_norm.weight", HD)
            vec(p + "attn_k_norm.weight", HD)
        elif spec["qk_norm"] == "whole":
            vec(p + "attn_q_norm.weight", H * HD)
            vec(p + "attn_k_norm.weight", KV * HD)
        vec(p + "ffn_norm.weight", D)
        if spec["moe"]:
            w.add_tensor(p + "ffn_gate_inp.weight", (rng.standard_normal((E, D)) * 3.0 / np.sqrt(D)).astype(np.float32))
            mat(p + "ffn_gate_exps.weight", (E, F, D), 2.0)
            mat(p + "ffn_up_exps.weight", (E, F, D), 2.0)
            mat(p + "ffn_down_exps.weight", (E, D, F), 2.0)
            if spec["shared"]:
                w.add_tensor(p + "ffn_gate_inp_shexp.weight", (rng.standard_normal(D) / np.sqrt(D)).astype(np.float32))
                mat(p + "ffn_gate_shexp.weight", (F, D), 2.0)
                mat(p + "ffn_up_shexp.weight", (F, D), 2.0)
                mat(p + "ffn_down_shexp.weight", (D, F), 2.0)
        else:
            mat(p + "ffn_gate.weight", (2 * F, D), 2.0)
            mat(p + "ffn_up.weight", (2 * F, D), 2.0)
            mat(p + "ffn_down.weight", (D, 2 * F), 2.0)
    finish(w)


def quantize_with_llama(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed: {rc}")


def reference(path):
    """llama.cpp's logits with the prompt fed one token at a time (its decode path), the greedy
    continuation from there, and how far its batched prompt path deviates from that: for some
    K-quant files the batched path rounds differently (0.057 std seen on qwen2moe Q4_K_M)."""
    batch = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, n_ubatch=64, logits_all=True,
                            n_threads=1, verbose=False, seed=0)
    batch.eval(PROMPT)
    batch_logits = np.array(batch.scores[: len(PROMPT)], dtype=np.float32)
    del batch
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=1, n_ubatch=1, logits_all=True,
                          n_threads=1, verbose=False, seed=0)
    llm.eval(PROMPT)
    prompt_logits = np.array(llm.scores[: len(PROMPT)], dtype=np.float32)
    batch_deviation = float((np.abs(batch_logits - prompt_logits).max(axis=1) / prompt_logits.std(axis=1)).max())
    greedy, margins = [], []
    for _ in range(GREEDY):
        row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        top = np.sort(row)[-2:]
        margins.append(float((top[1] - top[0]) / row.std()))
        tok = int(np.argmax(row))
        greedy.append(tok)
        llm.eval([tok])
    del llm
    return prompt_logits, greedy, min(margins), batch_deviation


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures"))
    args = ap.parse_args()
    out = os.path.join(args.out, "forward")
    os.makedirs(out, exist_ok=True)
    small = (2, 64, 4, 2, 4, 2, 32)     # layers, d_model, heads, kv heads, experts, top-k, expert FFN
    wide = (1, 256, 2, 1, 3, 2, 256)    # K-quants need rows of 256; kept small: 1 layer, 3 experts
    jobs = [(name, t, None) for name in ARCHS for t in ("F16", "Q8_0", "Q4_0", "Q4_K_M")]
    jobs += [("llama", "Q8_0", "linear"), ("qwen3moe", "Q8_0", "yarn")]  # RoPE scaling, normal and NeoX
    index = {"llama_cpp_python": importlib.metadata.version("llama-cpp-python"),
             "gguf": importlib.metadata.version("gguf"), "prompt": PROMPT, "models": []}
    for name, wname, scaling in jobs:
        spec = ARCHS[name]
        fname = f"{name}-{wname.lower()}{'-rope-' + scaling if scaling else ''}.gguf"
        path = os.path.join(out, fname)
        for attempt in range(50):
            rng = np.random.default_rng(1000 * (list(ARCHS).index(name) + 1) + attempt)
            if wname == "Q4_K_M":
                with tempfile.TemporaryDirectory() as tmp:
                    src = os.path.join(tmp, "f32.gguf")
                    build(src, spec, rng, T.F32, wide)
                    quantize_with_llama(src, path, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M)
            else:
                build(path, spec, rng, getattr(T, wname), small, scaling)
            logits, greedy, margin, batch_deviation = reference(path)
            if margin >= MARGIN:
                break
            print(f"{fname}: margin {margin:.3f} too small, trying the next seed")
        else:
            raise RuntimeError(f"{fname}: no seed gave a clear greedy path")
        logits.tofile(os.path.join(out, fname.replace(".gguf", ".logits.f32")))
        types = sorted({t.tensor_type.name for t in gguf.GGUFReader(path).tensors})
        index["models"].append({"file": fname, "architecture": spec["arch"], "weights": wname, "rope_scaling": scaling,
                                "tensor_types": types,
                                "vocab": int(logits.shape[1]), "seed_attempt": attempt,
                                "logit_std": [float(s) for s in logits.std(axis=1)],
                                "greedy": greedy, "greedy_margin": margin,
                                "llama_batch_path_deviation": batch_deviation})
        print(f"{fname}: {os.path.getsize(path)} bytes, types {types}, greedy margin {margin:.3f}")
    with open(os.path.join(out, "references.json"), "w") as fp:
        json.dump(index, fp, indent=1)
        fp.write("\n")


if __name__ == "__main__":
    sys.exit(main())
