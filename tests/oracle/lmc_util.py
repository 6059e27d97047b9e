"""Helpers for the PyTorch oracle tests: safetensors and shard files in plain
numpy, running the lmc binary, and comparing arrays with stated tolerances."""
import json
import os
import struct
import subprocess
import sys

import numpy as np

LMC = os.environ.get("LMC", os.path.join(os.path.dirname(__file__), "..", "..", "build", "lmc"))

_DT = {"F32": np.float32, "I32": np.int32, "F16": np.float16}


def st_write(path, tensors, metadata=None):
    """Write a dict name -> np.ndarray (float32) as safetensors."""
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[base + info["data_offsets"][0]:base + info["data_offsets"][1]], dtype=np.uint16)
            arr = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            b, e = info["data_offsets"]
            arr = np.frombuffer(data[base + b:base + e], dtype=_DT[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out, header.get("__metadata__", {})


def write_shard(path, tokens):
    toks = np.asarray(tokens)
    wide = toks.max() > 65535
    header = np.zeros(256, dtype=np.int32)
    header[0], header[1], header[2] = 20240520, 2 if wide else 1, len(toks)
    with open(path, "wb") as f:
        f.write(header.tobytes() + toks.astype(np.uint32 if wide else np.uint16).tobytes())


def write_model(folder, params, cfg, tokens):
    """A Hugging Face folder (model.safetensors from params, torch tensors
    under HF names, and config.json) and a token shard in it: the shard's path."""
    st_write(os.path.join(folder, "model.safetensors"), {k: v.detach().numpy() for k, v in params.items()})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    shard = os.path.join(folder, "train.bin")
    write_shard(shard, tokens)
    return shard


def run_lmc(*args, check=True):
    cmd = [LMC] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise AssertionError("lmc failed (%d): %s" % (r.returncode, " ".join(cmd)))
    return r


def dump_step(init, shard, B, T, out):
    """lmc's forward/backward of the first batch (lmc dump): (acts, grads)."""
    run_lmc("dump", "--init", init, "--data", shard, "--batch", B, "--seq", T, "--out", out)
    return st_read(os.path.join(out, "acts.safetensors"))[0], st_read(os.path.join(out, "grads.safetensors"))[0]


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Checker:
    """Collects comparisons; each prints its worst error beside its tolerance."""

    def __init__(self):
        self.failures = 0

    def close(self, name, got, want, rtol, atol):
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            print("FAIL %-48s shape %s != %s" % (name, got.shape, want.shape))
            self.failures += 1
            return
        err = np.abs(got - want)
        bound = atol + rtol * np.abs(want)
        worst = float(np.max(err / bound)) if err.size else 0.0
        ok = bool(np.all(err <= bound))
        print("%s %-48s max abs err %.3g (%.2f of tolerance)" % ("ok  " if ok else "FAIL", name,
                                                                  float(err.max()) if err.size else 0, worst))
        self.failures += not ok

    def true(self, name, cond, detail=""):
        print("%s %-48s %s" % ("ok  " if cond else "FAIL", name, detail))
        self.failures += not cond

    def exit(self):
        print("%d failures" % self.failures)
        sys.exit(1 if self.failures else 0)
