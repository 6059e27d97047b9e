"""The PyTorch peer for bench/bench_train.py: GPT-2 (tied head, tanh GELU,
fp32) or Llama (RMSNorm, RoPE, SwiGLU, GQA) written as ordinary nn.Modules,
trained with torch.optim.AdamW on random tokens. Prints one JSON line:
ms per step (median after warm-up), tokens/s and peak RSS."""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        C, self.nh, self.nkv, self.llama = a.dim, a.heads, a.kv_heads, a.family == "llama"
        self.hs = C // a.heads
        bias = not self.llama
        Norm = RMSNorm if self.llama else nn.LayerNorm
        self.ln1, self.ln2 = Norm(C), Norm(C)
        self.qkv = nn.Linear(C, (a.heads + 2 * a.kv_heads) * self.hs, bias=bias)
        self.proj = nn.Linear(C, C, bias=bias)
        self.fc = nn.Linear(C, (2 if self.llama else 1) * a.ffn, bias=bias)
        self.out = nn.Linear(a.ffn, C, bias=bias)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split([self.nh * self.hs, self.nkv * self.hs, self.nkv * self.hs], dim=2)
        q = q.view(B, T, self.nh, self.hs).transpose(1, 2)
        k = k.view(B, T, self.nkv, self.hs).transpose(1, 2)
        v = v.view(B, T, self.nkv, self.hs).transpose(1, 2)
        if self.llama:
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            k = k.repeat_interleave(self.nh // self.nkv, dim=1)
            v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs))
        att = F.softmax(att.masked_fill(mask[:T, :T], float("-inf")), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, C))
        h = self.fc(self.ln2(x))
        if self.llama:
            g, u = h.chunk(2, dim=-1)
            h = F.silu(g) * u
        else:
            h = F.gelu(h, approximate="tanh")
        return x + self.out(h)


class RMSNorm(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., h:], x[..., :h]), dim=-1) * sin


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.wte = nn.Embedding(a.vocab, a.dim)
        self.wpe = nn.Embedding(a.max_seq, a.dim) if a.family == "gpt2" else None
        self.blocks = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.lnf = RMSNorm(a.dim) if a.family == "llama" else nn.LayerNorm(a.dim)
        self.head = None if a.family == "gpt2" else nn.Linear(a.dim, a.vocab, bias=False)
        hs = a.dim // a.heads
        inv = 1.0 / (10000 ** (torch.arange(0, hs, 2).float() / hs))
        f = torch.outer(torch.arange(a.max_seq).float(), inv)
        self.register_buffer("cos", torch.cat((f, f), -1).cos())
        self.register_buffer("sin", torch.cat((f, f), -1).sin())
        self.register_buffer("mask", ~torch.tril(torch.ones(a.max_seq, a.max_seq, dtype=torch.bool)))

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.cos[:T], self.sin[:T], self.mask)
        x = self.lnf(x)
        logits = x @ self.wte.weight.T if self.head is None else self.head(x)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    for k, d in [("layers", 12), ("heads", 12), ("kv_heads", 0), ("dim", 768), ("ffn", 0), ("vocab", 50257),
                 ("max_seq", 1024), ("batch", 4), ("seq", 64), ("steps", 8), ("threads", 1)]:
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=d)
    ap.add_argument("--family", default="gpt2")
    ap.add_argument("--foreach", type=int, default=0, help="multi-tensor AdamW")
    a = ap.parse_args()
    a.kv_heads = a.kv_heads or a.heads
    a.ffn = a.ffn or 4 * a.dim
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    plain = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, foreach=a.foreach)
    times = []
    for _ in range(a.steps):
        x = torch.randint(0, a.vocab, (a.batch, a.seq))
        y = torch.randint(0, a.vocab, (a.batch, a.seq))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    steady = sorted(times[2:]) if len(times) > 3 else sorted(times)
    ms = 1000 * steady[len(steady) // 2]
    print(json.dumps({"ms": ms, "tokens_per_s": a.batch * a.seq / (ms / 1000),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "params": sum(p.numel() for p in model.parameters()), "threads": a.threads}))


if __name__ == "__main__":
    main()
