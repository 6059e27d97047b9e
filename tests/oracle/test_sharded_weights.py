"""lmc's sharded weights read by an outside reader, as transformers reads a
sharded checkpoint: model.safetensors.index.json -> each file its
weight_map names -> the tensors in that file, every file parsed here with
numpy (no lmc code). The folders come from the C unit test
(test_weights_sharded with LMC_SHARDED_OUT=dir): a tiny GPT-2 (tied, Conv1D
weights stored transposed) and a tiny Llama (GQA, untied), each saved
sharded and also whole in single.safetensors.

Checks: the shard names (model-0000k-of-0000n.safetensors, k = 1..n), each
file's header (8-byte length, JSON, data offsets that tile the data section
exactly, format "pt" metadata, which transformers requires), that every
weight_map entry is in the file it names and every tensor of a file is in
weight_map pointing there, total_size, the state dict keys and shapes
GPT2LMHeadModel / LlamaForCausalLM expect from config.json, and that the
union of the shards equals single.safetensors bit for bit. Exact: no
tolerance, both sides are the same fp32 bits."""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

from lmc_util import Checker

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT_DIR = os.environ.get("LMC_UNIT_DIR", os.path.join(HERE, "..", "..", "build", "tests", "unit"))
chk = Checker()


def read_safetensors(path):
    """(name -> np.ndarray, metadata), checking the layout strictly."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base, size = 8 + n, len(data) - 8 - n
    meta = header.pop("__metadata__", {})
    spans, out = [], {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (path, name, info["dtype"])
        b, e = info["data_offsets"]
        assert 0 <= b <= e <= size and e - b == 4 * int(np.prod(info["shape"])), (path, name)
        spans.append((b, e))
        arr = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())  # as safetensors' torch loader returns them
    spans.sort()
    tiled = all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    assert tiled and spans[0][0] == 0 and spans[-1][1] == size, (path, "data offsets do not tile the data")
    return out, meta


def expected_shapes(cfg):
    """The state dict transformers' model class holds (tied heads excluded)."""
    want = {}
    if cfg["model_type"] == "gpt2":
        C, F, V, P = cfg["n_embd"], cfg["n_inner"], cfg["vocab_size"], cfg["n_positions"]
        want["transformer.wte.weight"], want["transformer.wpe.weight"] = (V, C), (P, C)
        for i in range(cfg["n_layer"]):
            h = "transformer.h.%d." % i
            for ln in ("ln_1", "ln_2"):
                want[h + ln + ".weight"] = want[h + ln + ".bias"] = (C,)
            want[h + "attn.c_attn.weight"], want[h + "attn.c_attn.bias"] = (C, 3 * C), (3 * C,)
            want[h + "attn.c_proj.weight"], want[h + "attn.c_proj.bias"] = (C, C), (C,)
            want[h + "mlp.c_fc.weight"], want[h + "mlp.c_fc.bias"] = (C, F), (F,)
            want[h + "mlp.c_proj.weight"], want[h + "mlp.c_proj.bias"] = (F, C), (C,)
        want["transformer.ln_f.weight"] = want["transformer.ln_f.bias"] = (C,)
        if not cfg.get("tie_word_embeddings", True):
            want["lm_head.weight"] = (V, C)
        return want
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg.get("head_dim", C // cfg["num_attention_heads"])
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    want["model.embed_tokens.weight"] = (V, C)
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        want[p + "input_layernorm.weight"] = want[p + "post_attention_layernorm.weight"] = (C,)
        want[p + "self_attn.q_proj.weight"], want[p + "self_attn.o_proj.weight"] = (q, C), (C, q)
        want[p + "self_attn.k_proj.weight"] = want[p + "self_attn.v_proj.weight"] = (kv, C)
        want[p + "mlp.gate_proj.weight"] = want[p + "mlp.up_proj.weight"] = (I, C)
        want[p + "mlp.down_proj.weight"] = (C, I)
    want["model.norm.weight"] = (C,)
    if not cfg.get("tie_word_embeddings", False):
        want["lm_head.weight"] = (V, C)
    return want


def check_folder(name, folder):
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        index = json.load(f)
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    weight_map = index["weight_map"]
    files = sorted(set(weight_map.values()))  # as transformers' get_checkpoint_shard_files
    n = len(files)
    names_ok = [re.fullmatch(r"model-(\d{5})-of-(\d{5})\.safetensors", f) for f in files]
    chk.true(name + ": shard names", all(names_ok) and [int(m.group(1)) for m in names_ok] == list(range(1, n + 1))
             and all(int(m.group(2)) == n for m in names_ok), "%d files" % n)
    chk.true(name + ": more than one shard", n > 1, "%d" % n)
    state, total = {}, 0
    for fname in files:
        tensors, meta = read_safetensors(os.path.join(folder, fname))
        chk.true(name + ": " + fname + " metadata format pt", meta.get("format") == "pt")
        listed = {k for k, v in weight_map.items() if v == fname}
        chk.true(name + ": " + fname + " holds what weight_map lists", set(tensors) == listed,
                 "%d tensors" % len(tensors))
        for k, t in tensors.items():
            state[k] = t
            total += t.numel() * t.element_size()
    chk.true(name + ": total_size", index["metadata"]["total_size"] == total, "%d bytes" % total)
    want = expected_shapes(cfg)
    chk.true(name + ": keys are the model's state dict", set(state) == set(want),
             "missing %s unexpected %s" % (sorted(set(want) - set(state))[:3], sorted(set(state) - set(want))[:3]))
    bad = [k for k in want if k in state and tuple(state[k].shape) != want[k]]
    chk.true(name + ": shapes are the model's", not bad, ", ".join(bad[:3]))
    single, _ = read_safetensors(os.path.join(folder, "single.safetensors"))
    same = set(single) == set(state) and all(torch.equal(single[k].view(torch.int32), state[k].view(torch.int32))
                                             for k in single)
    chk.true(name + ": shards == single.safetensors bitwise", same, "%d tensors" % len(single))
    chk.true(name + ": values are not all zero", all(float(t.abs().max()) > 0 for t in state.values()))


out = tempfile.mkdtemp(prefix="lmc_sharded_")
binary = os.path.join(UNIT_DIR, "test_weights_sharded")
r = subprocess.run([binary], env=dict(os.environ, LMC_SHARDED_OUT=out), capture_output=True, text=True)
if r.returncode != 0:
    sys.stderr.write(r.stdout + r.stderr)
chk.true("unit test wrote the folders", r.returncode == 0, binary)
if r.returncode == 0:
    for model in ("gpt2", "llama"):
        check_folder(model, os.path.join(out, model))
subprocess.run(["rm", "-rf", out])
chk.exit()
