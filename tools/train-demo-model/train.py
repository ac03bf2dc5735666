#!/usr/bin/env python3
"""Trains swift-moe's embedded demo model from a fixed seed and exports it as a Q8_0 GGUF.

One command reproduces it (after `apt-get install r-cran-janeaustenr` and
`pip install -r tools/train-demo-model/requirements.txt`):

  python3 tools/train-demo-model/train.py --out Models/demo-austen-moe.gguf

Steps: read Jane Austen's six novels (corpus.py), hold out the last 5% of each; train a
byte-level BPE tokenizer (GPT-2 pre-tokenizer rule, 4096 tokens); train a qwen3moe (model.py)
with a load-balancing loss; export token list, merges and weights with the `gguf` package;
write the held-out sample, training log and routing statistics next to the model.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
from model import Config, MoELM  # noqa: E402

SEED = 20261123
EOT = "<|endoftext|>"


def train_tokenizer(texts, vocab):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def encode_docs(tok, texts):
    eot = tok.token_to_id(EOT)
    ids = []
    for t in texts:
        ids.append(eot)
        ids.extend(tok.encode(t).ids)
    return torch.tensor(ids, dtype=torch.long)


def batches(data, batch, ctx, gen):
    while True:
        starts = torch.randint(0, len(data) - ctx - 1, (batch,), generator=gen)
        x = torch.stack([data[s:s + ctx] for s in starts.tolist()])
        y = torch.stack([data[s + 1:s + ctx + 1] for s in starts.tolist()])
        yield x, y


@torch.no_grad()
def perplexity(model, data, ctx):
    """Mean next-token loss over non-overlapping windows of `ctx` tokens (first token of each unscored)."""
    model.eval()
    total, n = 0.0, 0
    for s in range(0, len(data) - ctx - 1, ctx):
        x = data[s:s + ctx][None]
        y = data[s + 1:s + ctx + 1][None]
        logits, _, _ = model(x)
        total += F.cross_entropy(logits[0], y[0], reduction="sum").item()
        n += y.numel()
    model.train()
    return math.exp(total / n), n


def export(model, tok, cfg, path, meta):
    import gguf
    from gguf import GGMLQuantizationType as T

    w = gguf.GGUFWriter(path, arch="qwen3moe")
    w.add_name("swift-moe demo (Austen MoE)")
    w.add_description(meta["description"])
    w.add_license("MIT")
    w.add_block_count(cfg.layers)
    w.add_context_length(cfg.context)
    w.add_embedding_length(cfg.d_model)
    w.add_feed_forward_length(cfg.expert_ffn * cfg.top_k)
    w.add_head_count(cfg.heads)
    w.add_head_count_kv(cfg.kv_heads)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_rope_freq_base(cfg.rope_base)
    w.add_layer_norm_rms_eps(cfg.eps)
    w.add_expert_count(cfg.experts)
    w.add_expert_used_count(cfg.top_k)
    w.add_expert_feed_forward_length(cfg.expert_ffn)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)

    vocab = tok.get_vocab()
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    eot = tok.token_to_id(EOT)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([3 if i == eot else 1 for i in range(len(tokens))])
    w.add_token_merges(merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_add_bos_token(False)

    def q8(name, t):
        a = t.detach().float().numpy()
        w.add_tensor(name, np.ascontiguousarray(gguf.quants.quantize(a, T.Q8_0)).view(np.uint8), raw_dtype=T.Q8_0)

    def f32(name, t):
        w.add_tensor(name, t.detach().float().numpy().astype(np.float32))

    q8("token_embd.weight", model.embed.weight)
    f32("output_norm.weight", model.norm.weight)
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        f32(p + "attn_norm.weight", b.attn_norm.weight)
        q8(p + "attn_q.weight", b.attn.q.weight)
        q8(p + "attn_k.weight", b.attn.k.weight)
        q8(p + "attn_v.weight", b.attn.v.weight)
        q8(p + "attn_output.weight", b.attn.o.weight)
        f32(p + "attn_q_norm.weight", b.attn.q_norm.weight)
        f32(p + "attn_k_norm.weight", b.attn.k_norm.weight)
        f32(p + "ffn_norm.weight", b.ffn_norm.weight)
        f32(p + "ffn_gate_inp.weight", b.moe.router.weight)
        q8(p + "ffn_gate_exps.weight", b.moe.gate)
        q8(p + "ffn_up_exps.weight", b.moe.up)
        q8(p + "ffn_down_exps.weight", b.moe.down)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@torch.no_grad()
def routing_stats(model, data, ctx, cfg):
    """Per layer: usage share of the busiest expert over the mean, and how often a token reuses
    at least one expert of the previous token."""
    model.eval()
    counts = np.zeros((cfg.layers, cfg.experts))
    reuse = np.zeros(cfg.layers)
    pairs = 0
    for s in range(0, min(len(data) - ctx - 1, 16 * ctx), ctx):
        _, routes, _ = model(data[s:s + ctx][None])
        for l, idx in enumerate(routes):
            idx = idx.numpy()
            for row in idx:
                counts[l, row] += 1
            prev, cur = idx[:-1], idx[1:]
            reuse[l] += sum(len(set(a) & set(b)) > 0 for a, b in zip(prev, cur))
        pairs += ctx - 1
    model.train()
    mean = counts.sum(1) / cfg.experts
    return [{"layer": l, "max_over_mean": float(counts[l].max() / mean[l]),
             "unused": int((counts[l] == 0).sum()),
             "next_token_reuse": float(reuse[l] / pairs)} for l in range(cfg.layers)]


@torch.no_grad()
def sample_text(model, tok, prompt, n):
    model.eval()
    ids = tok.encode(prompt).ids
    for _ in range(n):
        logits, _, _ = model(torch.tensor([ids[-model.cfg.context:]]))
        ids.append(int(logits[0, -1].argmax()))
    model.train()
    return tok.decode(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="Models/demo-austen-moe.gguf")
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--balance", type=float, default=0.01, help="load-balancing loss weight")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--checkpoint", help="also save the float weights and tokenizer here (PyTorch .pt)")
    ap.add_argument("--from-checkpoint", help="skip training: load this checkpoint and export it")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    train_texts, held_texts = corpus.split(corpus.novels())
    tok = train_tokenizer(train_texts, args.vocab)
    train_ids = encode_docs(tok, train_texts)
    held_ids = encode_docs(tok, held_texts)
    print(f"corpus: {sum(map(len, train_texts))} chars -> {len(train_ids)} training tokens, "
          f"{len(held_ids)} held-out tokens; tokenizer {time.time() - t0:.0f}s", flush=True)

    cfg = Config(vocab=tok.get_vocab_size())
    model = MoELM(cfg)
    if args.from_checkpoint:
        ck = torch.load(args.from_checkpoint)
        tok = Tokenizer.from_str(ck["tokenizer"])
        model.load_state_dict(ck["model"])
        args.steps = 0
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, args.steps))))))
    gen = torch.Generator().manual_seed(SEED)
    it = batches(train_ids, args.batch, cfg.context, gen)
    log = []
    t_train = time.time()
    for step in range(1, args.steps + 1):
        x, y = next(it)
        logits, _, balance = model(x)
        lm = F.cross_entropy(logits.view(-1, cfg.vocab), y.view(-1))
        loss = lm + args.balance * balance / cfg.layers
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0 or step == args.steps:
            el = time.time() - t_train
            rate = step * args.batch * cfg.context / el
            print(f"step {step}/{args.steps} loss {lm.item():.3f} balance {balance.item() / cfg.layers:.3f} "
                  f"{rate:.0f} tok/s {el / 60:.1f} min", flush=True)
            log.append({"step": step, "loss": round(lm.item(), 4), "balance": round(balance.item() / cfg.layers, 4)})
    train_minutes = (time.time() - t_train) / 60
    if args.checkpoint:
        torch.save({"model": model.state_dict(), "tokenizer": tok.to_str()}, args.checkpoint)

    ppl, n = perplexity(model, held_ids, cfg.context)
    stats = routing_stats(model, held_ids, cfg.context, cfg)
    sample = sample_text(model, tok, "It is a truth universally acknowledged", 48)
    print(f"held-out perplexity {ppl:.2f} over {n} tokens; {train_minutes:.1f} min training", flush=True)
    print(sample, flush=True)

    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    meta = {
        "description": "A 6-layer qwen3moe (16 experts, top-2) trained on Jane Austen's six novels "
                       "by tools/train-demo-model; swift-moe's embedded default.",
        "seed": SEED, "steps": args.steps, "batch": args.batch, "context": cfg.context, "lr": args.lr,
        "threads": args.threads, "balance_weight": args.balance, "parameters": params,
        "training_tokens_seen": args.steps * args.batch * cfg.context,
        "corpus_training_tokens": len(train_ids), "heldout_tokens": len(held_ids),
        "training_minutes": round(train_minutes, 1), "heldout_perplexity_torch_f32": round(ppl, 3),
        "routing": stats, "greedy_sample_torch_f32": sample, "log": log,
        "torch": torch.__version__,
    }
    export(model, tok, cfg, out, meta)
    base = os.path.splitext(out)[0]
    with open(base + ".training.json", "w") as f:
        json.dump(meta, f, indent=1)
    # A held-out sample small enough to commit, for perplexity checks without the corpus.
    with open(base + ".heldout.txt", "w") as f:
        f.write(held_texts[5][:12000])
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
