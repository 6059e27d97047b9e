"""GPT-2 against PyTorch: logits, loss and every parameter gradient of a
small random model with odd sizes, then 10 AdamW steps (gradient
accumulation, warmup + cosine schedule, weight decay, clipping): per-step
losses and final weights.

Tolerances (fp32 throughout; differences come only from summation order):
logits and loss 1e-4 relative; gradients 1e-3 relative plus 1e-4 of the
tensor's largest entry (gradients near zero differ by rounding only).
After 10 steps the weights agree to 1e-3 relative plus 0.2% of the largest
possible AdamW movement (lr per step): Adam divides each gradient by its own
running magnitude, so where a gradient is pure rounding noise (the key bias
has an exactly zero true gradient: softmax ignores a per-row constant) both
implementations take different full-size steps. A wrongly applied weight
decay (lr * wd * w per step) would exceed this bound more than twice over."""
import json
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import reference as ref
from lmc_util import Checker, dump_step, read_log, run_lmc, st_read, st_write, write_shard

torch.manual_seed(0)
L, NH, C, V, MAXT = 2, 3, 48, 97, 16
B, T = 3, 13
chk = Checker()
tmp = tempfile.mkdtemp(prefix="lmc_oracle_")

params = ref.gpt2_params(L, NH, C, V, MAXT, seed=1)
cfg = ref.gpt2_config(L, NH, C, V, MAXT)
model_path = os.path.join(tmp, "model.safetensors")
st_write(model_path, {k: v.detach().numpy() for k, v in params.items()})
with open(os.path.join(tmp, "config.json"), "w") as f:  # found beside the weights
    json.dump(cfg, f)
rng = np.random.default_rng(2)
tokens = rng.integers(0, V, size=4000)
shard = os.path.join(tmp, "train.bin")
write_shard(shard, tokens)

# ---- one forward/backward ----
acts, grads = dump_step(model_path, shard, B, T, tmp)
x, y = ref.batch(tokens, 0, B, T)
logits = ref.gpt2_forward(params, cfg, x)
loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
loss.backward()
chk.close("logits (B,T,V)", acts["logits"], logits.detach().numpy(), 1e-4, 1e-5)
chk.close("loss", acts["loss"][0], loss.item(), 1e-5, 0)
per_pos = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="none").reshape(B, T)
chk.close("per-position losses", acts["losses"], per_pos.detach().numpy(), 1e-4, 1e-6)
chk.true("every parameter has a gradient", set(grads) == set(params), "%d tensors" % len(grads))
for name, p in params.items():
    want = p.grad.numpy()
    chk.close("grad " + name, grads[name], want, 1e-3, 1e-4 * float(np.abs(want).max()))

# ---- 10 AdamW steps ----
steps, K, lr, warmup, wd, clip = 10, 2, 1e-2, 3, 0.1, 0.5
log = os.path.join(tmp, "log.jsonl")
final = os.path.join(tmp, "final.safetensors")
run_lmc("train", "--init", model_path, "--data", shard, "--no-shuffle", "--batch", B, "--seq", T, "--grad-accum", K,
        "--steps", steps, "--lr", lr, "--warmup", warmup, "--schedule", "cosine", "--min-lr-frac", 0.1,
        "--weight-decay", wd, "--beta1", 0.9, "--beta2", 0.95, "--eps", 1e-8, "--clip", clip,
        "--log", log, "--save", final, "--quiet")
params2 = ref.gpt2_params(L, NH, C, V, MAXT, seed=1)
want_losses = ref.train(params2, ref.gpt2_forward, cfg, tokens, B, T, K, steps, lr, warmup, "cosine", 0.1, wd,
                        0.9, 0.95, 1e-8, clip)
got = read_log(log)
chk.close("10-step losses", [r["loss"] for r in got], want_losses, 1e-4, 0)
chk.close("10-step learning rates", [r["lr"] for r in got],
          [ref.lr_at(s, lr, warmup, steps, "cosine", 0.1) for s in range(steps)], 1e-6, 0)
chk.true("clipping was exercised", max(r["grad_norm"] for r in got) > clip)
out, meta = st_read(final)
chk.true("saved file carries the config", "lmc_config" in meta)
for name, p in params2.items():
    want = p.detach().numpy()
    chk.close("weights after 10 steps " + name, out[name], want, 1e-3, 2e-3 * lr * steps)
chk.exit()
