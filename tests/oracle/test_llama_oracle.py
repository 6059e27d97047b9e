"""Llama (RMSNorm, rotary embeddings on the two halves of each head, SwiGLU,
grouped-query attention, no biases, untied and tied heads) against a plain
PyTorch Llama: logits, loss, every gradient, and 10 AdamW steps, for GQA
ratios 1, 2 and 4 and an odd sequence length. Tolerances as in
test_gpt2_oracle.py (see its docstring for the reasoning)."""
import json
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import reference as ref
from lmc_util import Checker, dump_step, read_log, run_lmc, st_read, write_model

chk = Checker()
L, C, I, V, MAXT = 2, 32, 40, 61, 32
B, T = 2, 11
rng = np.random.default_rng(5)
tokens = rng.integers(0, V, size=3000)

for NH, NKV, tied in [(4, 4, False), (4, 2, False), (4, 1, False), (4, 2, True)]:
    tag = "gqa %d/%d%s" % (NH, NKV, " tied" if tied else "")
    tmp = tempfile.mkdtemp(prefix="lmc_llama_")
    params = ref.llama_params(L, NH, NKV, C, I, V, seed=NH * 10 + NKV, tied=tied)
    cfg = ref.llama_config(L, NH, NKV, C, I, V, MAXT, tied=tied, theta=500.0)
    shard = write_model(tmp, params, cfg, tokens)

    acts, grads = dump_step(tmp, shard, B, T, tmp)
    x, y = ref.batch(tokens, 0, B, T)
    logits = ref.llama_forward(params, cfg, x)
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    chk.close(tag + " logits", acts["logits"], logits.detach().numpy(), 1e-4, 1e-5)
    chk.close(tag + " loss", acts["loss"][0], loss.item(), 1e-5, 0)
    chk.true(tag + " every parameter has a gradient", set(grads) == set(params), "%d tensors" % len(grads))
    for name, p in params.items():
        want = p.grad.numpy()
        chk.close(tag + " grad " + name, grads[name], want, 1e-3, 1e-4 * float(np.abs(want).max()))

    steps, K, lr = 10, 1, 1e-2
    log, final = os.path.join(tmp, "log.jsonl"), os.path.join(tmp, "final")
    run_lmc("train", "--init", tmp, "--data", shard, "--no-shuffle", "--batch", B, "--seq", T, "--grad-accum", K,
            "--steps", steps, "--lr", lr, "--warmup", 2, "--schedule", "linear", "--min-lr-frac", 0.0,
            "--weight-decay", 0.1, "--clip", 1.0, "--log", log, "--save", final + "/", "--quiet")
    params2 = ref.llama_params(L, NH, NKV, C, I, V, seed=NH * 10 + NKV, tied=tied)
    want_losses = ref.train(params2, ref.llama_forward, cfg, tokens, B, T, K, steps, lr, 2, "linear", 0.0, 0.1,
                            0.9, 0.95, 1e-8, 1.0)
    chk.close(tag + " 10-step losses", [r["loss"] for r in read_log(log)], want_losses, 1e-4, 0)
    out, _ = st_read(os.path.join(final, "model.safetensors"))
    with open(os.path.join(final, "config.json")) as f:
        saved_cfg = json.load(f)
    chk.true(tag + " saved config.json uses HF keys",
             saved_cfg["num_key_value_heads"] == NKV and saved_cfg["rope_theta"] == 500.0 and
             saved_cfg["tie_word_embeddings"] == tied)
    for name, p in params2.items():
        chk.close(tag + " weights after 10 steps " + name, out[name], p.detach().numpy(), 1e-3, 2e-3 * lr * steps)
chk.exit()
