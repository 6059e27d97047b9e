"""Plain PyTorch reference models (GPT-2 and Llama), parameters held in a
dict under Hugging Face names so they can be saved and compared directly."""
import math

import numpy as np
import torch
import torch.nn.functional as F


def gpt2_params(L, NH, C, V, T, seed, ffn=None):
    g = torch.Generator().manual_seed(seed)
    F_ = ffn or 4 * C
    p = {"transformer.wte.weight": torch.randn(V, C, generator=g) * 0.02,
         "transformer.wpe.weight": torch.randn(T, C, generator=g) * 0.02}
    for i in range(L):
        h = "transformer.h.%d." % i
        p[h + "ln_1.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
        p[h + "ln_1.bias"] = 0.1 * torch.randn(C, generator=g)
        p[h + "attn.c_attn.weight"] = torch.randn(C, 3 * C, generator=g) * 0.05
        p[h + "attn.c_attn.bias"] = 0.05 * torch.randn(3 * C, generator=g)
        p[h + "attn.c_proj.weight"] = torch.randn(C, C, generator=g) * 0.05
        p[h + "attn.c_proj.bias"] = 0.05 * torch.randn(C, generator=g)
        p[h + "ln_2.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
        p[h + "ln_2.bias"] = 0.1 * torch.randn(C, generator=g)
        p[h + "mlp.c_fc.weight"] = torch.randn(C, F_, generator=g) * 0.05
        p[h + "mlp.c_fc.bias"] = 0.05 * torch.randn(F_, generator=g)
        p[h + "mlp.c_proj.weight"] = torch.randn(F_, C, generator=g) * 0.05
        p[h + "mlp.c_proj.bias"] = 0.05 * torch.randn(C, generator=g)
    p["transformer.ln_f.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
    p["transformer.ln_f.bias"] = 0.1 * torch.randn(C, generator=g)
    return {k: v.double().float().requires_grad_() for k, v in p.items()}


def gpt2_config(L, NH, C, V, T, ffn=None):
    return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": L, "n_head": NH, "n_embd": C,
            "n_positions": T, "vocab_size": V, "n_inner": ffn, "layer_norm_epsilon": 1e-5,
            "activation_function": "gelu_new", "tie_word_embeddings": True}


def causal_attention(q, k, v):
    # q (B,NH,T,HS); k, v (B,NH,T,HS)
    T, HS = q.shape[2], q.shape[3]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    att = att.masked_fill(~mask, float("-inf"))
    return F.softmax(att, dim=-1) @ v


def gpt2_forward(p, cfg, idx):
    L, NH, C = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
    B, T = idx.shape
    HS = C // NH
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
    for i in range(L):
        h = "transformer.h.%d." % i
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], 1e-5)
        qkv = a @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]
        q, k, v = [t.view(B, T, NH, HS).transpose(1, 2) for t in qkv.split(C, dim=2)]
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]
        a = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], 1e-5)
        m = F.gelu(a @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"], approximate="tanh")
        x = x + m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], 1e-5)
    return x @ p["transformer.wte.weight"].T


def llama_params(L, NH, NKV, C, I, V, seed, tied=False):
    g = torch.Generator().manual_seed(seed)
    HS = C // NH
    p = {"model.embed_tokens.weight": torch.randn(V, C, generator=g) * 0.05}
    for i in range(L):
        h = "model.layers.%d." % i
        p[h + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
        p[h + "self_attn.q_proj.weight"] = torch.randn(NH * HS, C, generator=g) * 0.08
        p[h + "self_attn.k_proj.weight"] = torch.randn(NKV * HS, C, generator=g) * 0.08
        p[h + "self_attn.v_proj.weight"] = torch.randn(NKV * HS, C, generator=g) * 0.08
        p[h + "self_attn.o_proj.weight"] = torch.randn(C, NH * HS, generator=g) * 0.08
        p[h + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
        p[h + "mlp.gate_proj.weight"] = torch.randn(I, C, generator=g) * 0.08
        p[h + "mlp.up_proj.weight"] = torch.randn(I, C, generator=g) * 0.08
        p[h + "mlp.down_proj.weight"] = torch.randn(C, I, generator=g) * 0.08
    p["model.norm.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
    if not tied:
        p["lm_head.weight"] = torch.randn(V, C, generator=g) * 0.05
    return {k: v.requires_grad_() for k, v in p.items()}


def llama_config(L, NH, NKV, C, I, V, T, tied=False, theta=10000.0):
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "num_hidden_layers": L,
            "num_attention_heads": NH, "num_key_value_heads": NKV, "hidden_size": C, "intermediate_size": I,
            "max_position_embeddings": T, "vocab_size": V, "rms_norm_eps": 1e-5, "rope_theta": theta,
            "tie_word_embeddings": tied, "hidden_act": "silu"}


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama_mlp(p, i, a):
    """Layer i's SwiGLU MLP of its normed input a."""
    h = "model.layers.%d." % i
    m = F.silu(a @ p[h + "mlp.gate_proj.weight"].T) * (a @ p[h + "mlp.up_proj.weight"].T)
    return m @ p[h + "mlp.down_proj.weight"].T


def llama_forward(p, cfg, idx, mlp=llama_mlp):
    """Logits; mlp(p, i, a) is layer i's MLP (reference_moe.py gives a mixture of experts)."""
    L, NH, NKV, C = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    B, T = idx.shape
    HS = C // NH
    inv_freq = 1.0 / (theta ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().float(), emb.sin().float()
    x = p["model.embed_tokens.weight"][idx]
    for i in range(L):
        h = "model.layers.%d." % i
        a = rms_norm(x, p[h + "input_layernorm.weight"], eps)
        q = (a @ p[h + "self_attn.q_proj.weight"].T).view(B, T, NH, HS).transpose(1, 2)
        k = (a @ p[h + "self_attn.k_proj.weight"].T).view(B, T, NKV, HS).transpose(1, 2)
        v = (a @ p[h + "self_attn.v_proj.weight"].T).view(B, T, NKV, HS).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = NH // NKV
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, NH * HS)
        x = x + y @ p[h + "self_attn.o_proj.weight"].T
        a = rms_norm(x, p[h + "post_attention_layernorm.weight"], eps)
        x = x + mlp(p, i, a)
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ head.T


def lr_at(step, lr, warmup, steps, schedule, min_frac):
    """lmc's schedule (src/train/schedule.c), written independently."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    min_lr = lr * min_frac
    span = steps - warmup
    prog = min(1.0, (step - warmup) / span) if span > 0 else 1.0
    if schedule == "constant":
        return lr
    if schedule == "linear":
        return lr - (lr - min_lr) * prog
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * prog))


def batch(tokens, g0, B, T):
    """Sequences g0 .. g0+B-1 in order: inputs and next-token targets."""
    x = np.stack([tokens[(g0 + b) * T:(g0 + b) * T + T] for b in range(B)])
    y = np.stack([tokens[(g0 + b) * T + 1:(g0 + b) * T + T + 1] for b in range(B)])
    return torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))


def train(p, forward, cfg, tokens, B, T, K, steps, lr, warmup, schedule, min_frac, wd, b1, b2, eps, clip):
    """torch.optim.AdamW with decay on 2-D tensors; returns per-step losses."""
    decay = [t for t in p.values() if t.dim() >= 2]
    plain = [t for t in p.values() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": plain, "weight_decay": 0.0}],
                            lr=lr, betas=(b1, b2), eps=eps)
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, lr, warmup, steps, schedule, min_frac)
        opt.zero_grad()
        total = 0.0
        for k in range(K):
            x, y = batch(tokens, (step * K + k) * B, B, T)
            logits = forward(p, cfg, x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            (loss / K).backward()
            total += loss.item()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(list(p.values()), clip)
        opt.step()
        losses.append(total / K)
    return losses
