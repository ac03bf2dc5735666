"""A qwen3moe language model in PyTorch whose math is exactly llama.cpp's `qwen3moe` graph.

Per layer: RMSNorm -> attention (GQA, per-head RMSNorm on q and k, NeoX RoPE, causal softmax)
-> residual; RMSNorm -> router (softmax over all experts, top-k, weights renormalised to sum 1)
-> SwiGLU experts -> residual. Final RMSNorm, output head tied to the token embedding.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab: int = 4096
    layers: int = 6
    d_model: int = 256
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 64
    experts: int = 16
    top_k: int = 2
    expert_ffn: int = 128
    context: int = 256
    rope_base: float = 10000.0
    eps: float = 1e-6


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg, positions):
    half = cfg.head_dim // 2
    inv = cfg.rope_base ** (-torch.arange(half, dtype=torch.float32) * 2 / cfg.head_dim)
    ang = positions.float()[:, None] * inv[None, :]
    return ang.cos(), ang.sin()


def rope_neox(x, cos, sin):
    # x: (B, H, T, hd); NeoX pairs element i with i + hd/2.
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg.d_model, cfg.head_dim
        self.q = nn.Linear(d, cfg.heads * hd, bias=False)
        self.k = nn.Linear(d, cfg.kv_heads * hd, bias=False)
        self.v = nn.Linear(d, cfg.kv_heads * hd, bias=False)
        self.o = nn.Linear(cfg.heads * hd, d, bias=False)
        self.q_norm = RMSNorm(hd, cfg.eps)
        self.k_norm = RMSNorm(hd, cfg.eps)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        c = self.cfg
        q = self.q_norm(self.q(x).view(B, T, c.heads, c.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k(x).view(B, T, c.kv_heads, c.head_dim)).transpose(1, 2)
        v = self.v(x).view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = rope_neox(q, cos, sin), rope_neox(k, cos, sin)
        rep = c.heads // c.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(c.head_dim))
        return self.o(y.transpose(1, 2).reshape(B, T, c.heads * c.head_dim))


class Experts(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        E, f, d = cfg.experts, cfg.expert_ffn, cfg.d_model
        self.router = nn.Linear(d, E, bias=False)
        self.gate = nn.Parameter(torch.randn(E, f, d) / math.sqrt(d))
        self.up = nn.Parameter(torch.randn(E, f, d) / math.sqrt(d))
        self.down = nn.Parameter(torch.randn(E, d, f) / math.sqrt(f))

    def forward(self, x):
        """Returns the layer output, the routing choice (N, k), and the load-balancing loss."""
        c = self.cfg
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        probs = F.softmax(self.router(x), dim=-1)
        w, idx = probs.topk(c.top_k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        out = torch.zeros_like(x)
        for e in range(c.experts):
            rows, slot = (idx == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            h = x[rows]
            y = F.silu(h @ self.gate[e].t()) * (h @ self.up[e].t())
            out.index_add_(0, rows, (y @ self.down[e].t()) * w[rows, slot, None])
        # Switch-Transformer balance loss: E * sum_e (fraction routed to e) * (mean prob of e).
        frac = torch.zeros(c.experts).index_add_(0, idx.reshape(-1), torch.ones(idx.numel())) / idx.numel()
        balance = c.experts * (frac * probs.mean(0)).sum()
        return out.view(shape), idx, balance


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.eps)
        self.moe = Experts(cfg)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        y, idx, balance = self.moe(self.ffn_norm(x))
        return x + y, idx, balance


class MoELM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.d_model, cfg.eps)

    def forward(self, tokens):
        """Logits (B, T, vocab), routing choices per layer, and the summed balance loss."""
        T = tokens.shape[1]
        cos, sin = rope_tables(self.cfg, torch.arange(T))
        x = self.embed(tokens)
        routes, balance = [], 0.0
        for b in self.blocks:
            x, idx, bal = b(x, cos, sin)
            routes.append(idx)
            balance = balance + bal
        return self.norm(x) @ self.embed.weight.t(), routes, balance
