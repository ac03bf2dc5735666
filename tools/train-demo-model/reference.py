#!/usr/bin/env python3
"""Records llama.cpp's view of the demo model, for the model card and swift-moe's tests.

  python3 tools/train-demo-model/reference.py Models/demo-austen-moe.gguf [--checkpoint demo.pt]

Writes Models/demo-austen-moe.reference.json with:
  - the held-out sample's first 1024 tokens (llama.cpp's tokenization of
    Models/demo-austen-moe.heldout.txt) and llama.cpp's perplexity on them in 256-token windows
    (each window from an empty cache; every token after a window's first is scored), plus the
    float32 PyTorch model's perplexity on the same windows when --checkpoint is given;
  - a perplexity bound for tests: llama.cpp's value plus 2%;
  - llama.cpp's 32-token greedy continuation of the demo prompt, fed one token at a time (the
    decode path, as for the forward-pass fixtures), with the logit margin of each step.
"""
import argparse
import json
import os
import sys

import numpy as np
from llama_cpp import Llama

PROMPT = "It is a truth universally acknowledged, that"
WINDOW = 256
HELDOUT_TOKENS = 1024


def log_softmax_nll(logits, targets):
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    return lse - logits[np.arange(len(targets)), targets]


def llama_ppl(llm, tokens):
    total, n = 0.0, 0
    for s in range(0, len(tokens) - 1, WINDOW):
        chunk = tokens[s:s + WINDOW]
        if len(chunk) < 2:
            break
        llm.reset()
        llm.eval(chunk)
        logits = np.array(llm.scores[:len(chunk)], dtype=np.float64)
        total += log_softmax_nll(logits[:-1], np.array(chunk[1:])).sum()
        n += len(chunk) - 1
    return float(np.exp(total / n)), n


def torch_ppl(checkpoint, tokens):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from model import Config, MoELM
    ck = torch.load(checkpoint)
    cfg = Config(vocab=ck["model"]["embed.weight"].shape[0])
    model = MoELM(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(tokens) - 1, WINDOW):
            chunk = tokens[s:s + WINDOW]
            if len(chunk) < 2:
                break
            logits, _, _ = model(torch.tensor([chunk]))
            total += log_softmax_nll(logits[0, :-1].double().numpy(), np.array(chunk[1:])).sum()
            n += len(chunk) - 1
    return float(np.exp(total / n))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--checkpoint")
    args = ap.parse_args()
    base = os.path.splitext(args.model)[0]
    llm = Llama(model_path=args.model, n_ctx=WINDOW, logits_all=True, verbose=False, n_threads=2, n_batch=WINDOW)
    with open(base + ".heldout.txt") as f:
        heldout = llm.tokenize(f.read().encode(), add_bos=False, special=False)[:HELDOUT_TOKENS]
    ppl, scored = llama_ppl(llm, heldout)
    result = {"llama_cpp_python": __import__("llama_cpp").__version__, "window": WINDOW,
              "heldout_tokens": heldout, "heldout_scored": scored, "perplexity_llama_cpp": ppl,
              "perplexity_bound": round(ppl * 1.02, 3)}
    if args.checkpoint:
        result["perplexity_torch_f32"] = torch_ppl(args.checkpoint, heldout)

    prompt = llm.tokenize(PROMPT.encode(), add_bos=True, special=False)
    llm.reset()
    for t in prompt:
        llm.eval([t])
    greedy, margins = [], []
    for _ in range(32):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        order = np.argsort(-logits)
        greedy.append(int(order[0]))
        margins.append(float(logits[order[0]] - logits[order[1]]))
        llm.eval([int(order[0])])
    result.update({"prompt": PROMPT, "prompt_tokens": prompt, "greedy": greedy, "greedy_margins": margins,
                   "greedy_text": llm.detokenize(greedy).decode("utf-8", errors="replace")})
    with open(base + ".reference.json", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("heldout_tokens",)}, indent=1))


if __name__ == "__main__":
    main()
