"""A plain PyTorch Mixtral (Hugging Face's MixtralForCausalLM, written out):
the Llama attention of reference.py, then per layer a sparse mixture of
SwiGLU experts (router, top-k, the k weights renormalised; index_add_ of
each expert's weighted rows, as MixtralSparseMoeBlock), and Hugging Face's
load_balancing_loss_func over all layers' router logits. lmc's extensions
are here too: a sigmoid router (DeepSeek-V3's scores, normalised over the
k), its balancing bias (gate.e_score_correction_bias, when the parameters
have it: added to the scores to choose the k, as DeepseekV3TopkRouter),
shared experts (always on, weight 1) and dense first layers.
Parameters are a dict under Hugging Face's names."""
import torch
import torch.nn.functional as F

import reference as ref


def mixtral_config(L, NH, NKV, C, I, V, T, E, k, coef, tied=False, scoring="softmax", shared=0, first_dense=0,
                   dense_I=None):
    c = ref.llama_config(L, NH, NKV, C, I, V, T, tied=tied)
    c.update({"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "num_local_experts": E,
              "num_experts_per_tok": k, "router_aux_loss_coef": coef, "output_router_logits": True,
              "sliding_window": None, "scoring_func": scoring, "n_shared_experts": shared,
              "first_k_dense_replace": first_dense, "dense_intermediate_size": dense_I or I})
    return c


def mixtral_params(cfg, seed):
    L, NH, NKV, C = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    I, V, E = cfg["intermediate_size"], cfg["vocab_size"], cfg["num_local_experts"]
    S, DI = cfg["n_shared_experts"] * I, cfg["dense_intermediate_size"]
    g = torch.Generator().manual_seed(seed)
    HS = C // NH
    rnd = lambda *shape, s=0.08: torch.randn(*shape, generator=g) * s
    p = {"model.embed_tokens.weight": rnd(V, C, s=0.05)}
    for i in range(L):
        h = "model.layers.%d." % i
        p[h + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
        p[h + "self_attn.q_proj.weight"] = rnd(NH * HS, C)
        p[h + "self_attn.k_proj.weight"] = rnd(NKV * HS, C)
        p[h + "self_attn.v_proj.weight"] = rnd(NKV * HS, C)
        p[h + "self_attn.o_proj.weight"] = rnd(C, NH * HS)
        p[h + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
        if i < cfg["first_k_dense_replace"]:
            p[h + "mlp.gate_proj.weight"] = rnd(DI, C)
            p[h + "mlp.up_proj.weight"] = rnd(DI, C)
            p[h + "mlp.down_proj.weight"] = rnd(C, DI)
            continue
        m = h + "block_sparse_moe."
        p[m + "gate.weight"] = rnd(E, C, s=0.5)  # spread router logits: no near-ties in the top-k
        for e in range(E):
            p[m + "experts.%d.w1.weight" % e] = rnd(I, C)
            p[m + "experts.%d.w3.weight" % e] = rnd(I, C)
            p[m + "experts.%d.w2.weight" % e] = rnd(C, I)
        if S:
            p[m + "shared_experts.gate_proj.weight"] = rnd(S, C)
            p[m + "shared_experts.up_proj.weight"] = rnd(S, C)
            p[m + "shared_experts.down_proj.weight"] = rnd(C, S)
    p["model.norm.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
    if not cfg["tie_word_embeddings"]:
        p["lm_head.weight"] = rnd(V, C, s=0.05)
    return {k: v.requires_grad_() for k, v in p.items()}


def swiglu(x, gate, up, down):
    return (F.silu(x @ gate.T) * (x @ up.T)) @ down.T


def sparse_moe(p, m, cfg, x):
    """MixtralSparseMoeBlock on x (N, C): (output (N, C), router logits (N, E))."""
    E, k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
    logits = x @ p[m + "gate.weight"].T
    if cfg["scoring_func"] == "sigmoid":
        scores = torch.sigmoid(logits.float())
    else:
        scores = F.softmax(logits, dim=1, dtype=torch.float)
    bias = p.get(m + "gate.e_score_correction_bias")  # DeepSeek-V3's balancing bias: it chooses, the scores weigh
    if bias is None:
        weights, chosen = torch.topk(scores, k, dim=-1)
    else:
        chosen = torch.topk(scores + bias, k, dim=-1).indices
        weights = scores.gather(1, chosen)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(x)
    for e in range(E):
        tok, j = torch.where(chosen == e)
        ex = m + "experts.%d." % e
        y = swiglu(x[tok], p[ex + "w1.weight"], p[ex + "w3.weight"], p[ex + "w2.weight"])
        out = out.index_add(0, tok, y * weights[tok, j, None])
    if cfg["n_shared_experts"]:
        s = m + "shared_experts."
        out = out + swiglu(x, p[s + "gate_proj.weight"], p[s + "up_proj.weight"], p[s + "down_proj.weight"])
    return out, logits


def load_balancing_loss(gate_logits, E, k):
    """transformers' load_balancing_loss_func without an attention mask."""
    cat = torch.cat(gate_logits, dim=0)
    routing_weights = F.softmax(cat, dim=-1)
    _, selected = torch.topk(routing_weights, k, dim=-1)
    expert_mask = F.one_hot(selected, E)
    tokens_per_expert = torch.mean(expert_mask.float(), dim=0)
    router_prob_per_expert = torch.mean(routing_weights, dim=0)
    return torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0)) * E


def mixtral_forward(p, cfg, idx):
    """(logits (B, T, V), the load-balancing loss, each layer's router logits): reference.py's Llama with
    a sparse mixture of experts as the MLP of the layers from first_k_dense_replace on."""
    router_logits = []

    def mlp(p_, i, a):
        if i < cfg["first_k_dense_replace"]:
            return ref.llama_mlp(p_, i, a)
        B, T, C = a.shape
        out, logits = sparse_moe(p_, "model.layers.%d.block_sparse_moe." % i, cfg, a.reshape(B * T, C))
        router_logits.append(logits)
        return out.view(B, T, C)

    logits = ref.llama_forward(p, cfg, idx, mlp)
    aux = load_balancing_loss(router_logits, cfg["num_local_experts"], cfg["num_experts_per_tok"])
    return logits, aux, router_logits


def objective(p, cfg, x, y):
    """MixtralForCausalLM's loss with output_router_logits: (cross-entropy + coef * aux, cross-entropy, aux)."""
    logits, aux, _ = mixtral_forward(p, cfg, x)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    return ce + cfg["router_aux_loss_coef"] * aux, ce, aux


def train(p, cfg, tokens, B, T, K, steps, lr, warmup, schedule, min_frac, wd, b1, b2, eps, clip):
    """torch.optim.AdamW with decay on 2-D tensors, K micro-batches per step
    (each micro-batch's objective / K); returns per-step mean cross-entropy
    and mean aux loss."""
    decay = [t for t in p.values() if t.dim() >= 2]
    plain = [t for t in p.values() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": plain, "weight_decay": 0.0}],
                            lr=lr, betas=(b1, b2), eps=eps)
    losses, auxes = [], []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = ref.lr_at(step, lr, warmup, steps, schedule, min_frac)
        opt.zero_grad()
        ce_sum = aux_sum = 0.0
        for k in range(K):
            x, y = ref.batch(tokens, (step * K + k) * B, B, T)
            total, ce, aux = objective(p, cfg, x, y)
            (total / K).backward()
            ce_sum, aux_sum = ce_sum + ce.item(), aux_sum + aux.item()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(list(p.values()), clip)
        opt.step()
        losses.append(ce_sum / K)
        auxes.append(aux_sum / K)
    return losses, auxes
