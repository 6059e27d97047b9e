"""Mixture of experts against a plain PyTorch Mixtral (reference_moe.py):
lmc loads Mixtral-format safetensors + config.json written here, and its
logits, cross-entropy, load-balancing loss, every gradient (the router's
included, through the renormalised top-k weights and the aux loss) and 5
AdamW steps (losses, aux losses, final weights, the saved config) are
compared. Variants: Mixtral (softmax router, top-2 of 4, untied); a sigmoid
router (DeepSeek-V3 scores) with a shared expert, a dense first layer, a
tied head and 2 micro-batches per step; top-3 of 8 with GQA 4/1.

Tolerances as test_llama_oracle.py's (fp32 throughout, differences only
from summation order; see test_gpt2_oracle.py's docstring): logits 1e-4
relative + 1e-5, losses 1e-5 relative (the aux loss is a sum of products
of means: the same), gradients 1e-3 relative + 1e-4 of the tensor's
largest entry, weights after 5 steps 1e-3 relative + 0.2% of the largest
AdamW movement (lr per step) -- an expert that got no token still moves by
weight decay, and a router gradient wrong by the aux term (coef 0.02 of a
loss of ~2, spread over all logits) would exceed the gradient bound. The
routing itself is discrete: the router's weights are drawn wide (std 0.5)
so that no token's k-th and (k+1)-th choices are within rounding of each
other (the two implementations' scores differ by ~1e-7); the test prints
the smallest margin it met, and fails if it was below 1e-6 (then a flip
would be a test artefact, not a bug). An expert no token chose has an
exactly zero gradient in both."""
import json
import os
import tempfile

import numpy as np
import torch

import reference as ref
import reference_moe as rm
from lmc_util import Checker, dump_step, read_log, run_lmc, st_read, write_model

chk = Checker()
C, I, V, MAXT = 32, 24, 61, 32
B, T = 2, 11
rng = np.random.default_rng(7)
tokens = rng.integers(0, V, size=4000)

VARIANTS = [
    ("mixtral top-2 of 4", dict(L=2, NH=4, NKV=2, E=4, k=2, coef=0.02), 1),
    ("sigmoid, shared, dense first, tied", dict(L=3, NH=4, NKV=2, E=4, k=2, coef=0.05, tied=True,
                                                 scoring="sigmoid", shared=1, first_dense=1, dense_I=40), 2),
    ("top-3 of 8, gqa 4/1", dict(L=2, NH=4, NKV=1, E=8, k=3, coef=0.01), 1),
]


def routing_margin(cfg, router_logits):
    """The smallest gap between a token's k-th and (k+1)-th router score, over all layers."""
    margins = []
    for logits in router_logits:
        s = torch.sigmoid(logits) if cfg["scoring_func"] == "sigmoid" else torch.softmax(logits, -1)
        top = torch.topk(s, cfg["num_experts_per_tok"] + 1, dim=-1).values
        margins.append(float((top[:, -2] - top[:, -1]).min()))
    return min(margins)


for tag, kw, K in VARIANTS:
    L, NH, NKV, E, k, coef = kw["L"], kw["NH"], kw["NKV"], kw["E"], kw["k"], kw["coef"]
    cfg = rm.mixtral_config(L, NH, NKV, C, I, V, MAXT, E, k, coef, tied=kw.get("tied", False),
                            scoring=kw.get("scoring", "softmax"), shared=kw.get("shared", 0),
                            first_dense=kw.get("first_dense", 0), dense_I=kw.get("dense_I"))
    tmp = tempfile.mkdtemp(prefix="lmc_moe_")
    params = rm.mixtral_params(cfg, seed=E * 10 + k)
    shard = write_model(tmp, params, cfg, tokens)

    acts, grads = dump_step(tmp, shard, B, T, tmp)
    x, y = ref.batch(tokens, 0, B, T)
    logits, aux, router_logits = rm.mixtral_forward(params, cfg, x)
    margin = routing_margin(cfg, router_logits)
    chk.true(tag + " routing margin >= 1e-6", margin >= 1e-6, "%.2g" % margin)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    (ce + coef * aux).backward()
    chk.close(tag + " logits", acts["logits"], logits.detach().numpy(), 1e-4, 1e-5)
    chk.close(tag + " loss (cross-entropy)", acts["loss"][0], ce.item(), 1e-5, 0)
    chk.close(tag + " aux loss", acts["aux_loss"][0], aux.item(), 1e-5, 0)
    chk.true(tag + " every parameter has a gradient", set(grads) == set(params),
             "%d tensors, missing %s, extra %s" % (len(grads), sorted(set(params) - set(grads))[:3],
                                                   sorted(set(grads) - set(params))[:3]))
    for name, p in params.items():
        if name not in grads:
            continue
        want = p.grad.numpy()
        chk.close(tag + " grad " + name, grads[name], want, 1e-3, max(1e-4 * float(np.abs(want).max()), 1e-30))

    steps, lr = 5, 1e-2
    log, final = os.path.join(tmp, "log.jsonl"), os.path.join(tmp, "final")
    run_lmc("train", "--init", tmp, "--data", shard, "--no-shuffle", "--batch", B, "--seq", T, "--grad-accum", K,
            "--steps", steps, "--lr", lr, "--warmup", 2, "--schedule", "linear", "--min-lr-frac", 0.0,
            "--weight-decay", 0.1, "--clip", 1.0, "--log", log, "--save", final + "/", "--quiet")
    params2 = rm.mixtral_params(cfg, seed=E * 10 + k)
    want_losses, want_aux = rm.train(params2, cfg, tokens, B, T, K, steps, lr, 2, "linear", 0.0, 0.1, 0.9, 0.95,
                                     1e-8, 1.0)
    rows = read_log(log)
    chk.close(tag + " 5-step losses", [r["loss"] for r in rows], want_losses, 1e-4, 0)
    chk.close(tag + " 5-step aux losses", [r["aux_loss"] for r in rows], want_aux, 1e-4, 0)
    out, _ = st_read(os.path.join(final, "model.safetensors"))
    with open(os.path.join(final, "config.json")) as f:
        saved = json.load(f)
    chk.true(tag + " saved config.json is Mixtral's",
             saved["model_type"] == "mixtral" and saved["num_local_experts"] == E and
             saved["num_experts_per_tok"] == k and abs(saved["router_aux_loss_coef"] - coef) < 1e-7 and
             saved["output_router_logits"] is True and saved["scoring_func"] == cfg["scoring_func"] and
             saved["n_shared_experts"] == cfg["n_shared_experts"] and
             saved["first_k_dense_replace"] == cfg["first_k_dense_replace"] and saved["intermediate_size"] == I)
    chk.true(tag + " saved tensors keep the HF names", set(out) == set(params2), "%d tensors" % len(out))
    for name, p in params2.items():
        chk.close(tag + " weights after 5 steps " + name, out[name], p.detach().numpy(), 1e-3, 2e-3 * lr * steps)
chk.exit()
