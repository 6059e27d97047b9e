"""The CPU backend's one GELU (src/backend/cpu/simd_math.h), every
instruction-set path this CPU runs (avx512, avx512-nodot, avx2, c), against
PyTorch's torch.nn.functional.gelu(approximate='tanh') and its autograd
derivative, computed in float64. The values come from the C helper
(test_simd_math --gelu IN DIR: the gelu_forward op, which is the matmul's
fused GELU epilogue, and gelu_backward with dout = 1).

Inputs: every 5.5e-5 over [-10, 12], large x up to 1e6, tiny |x| down to
1e-30, and +-0. Tolerance, per element, is what float32 rounding of
0.5 x (1 + tanh u), u = K (x + C x^3), allows: a few eps relative on the
result, eps relative on u carried through tanh (3 |u| eps sech^2 u), and
the absolute error of tanh u (at most eps, and at most sech^2 u where tanh
rounds to +-1) times 0.5 |x|; likewise for the derivative. PyTorch's own
float32 result is held to the same tolerance, to show it is not loose.

Below x = -10, e^{-2u} no longer fits a float: the vector paths return
x / (1 + e^87 or e^88) there instead of ~0; checked as |gelu| <= |x| e^-86
with gelu's sign, and the derivative within the tolerance."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

from lmc_util import Checker

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT_DIR = os.environ.get("LMC_UNIT_DIR", os.path.join(HERE, "..", "..", "build", "tests", "unit"))
EPS = float(np.finfo(np.float32).eps)
K, C = np.sqrt(2 / np.pi), 0.044715

chk = Checker()
x = np.concatenate([np.linspace(-10, 12, 400001), np.logspace(np.log10(12), 6, 4000),
                    np.logspace(-30, -3, 2000), -np.logspace(-30, -3, 2000), [0.0, -0.0]]).astype(np.float32)
tail = (-np.logspace(1.0, 6, 2000)[1:]).astype(np.float32)
xs = np.concatenate([x, tail])


def torch_gelu(v, dtype):
    t = torch.tensor(v, dtype=dtype, requires_grad=True)
    y = torch.nn.functional.gelu(t, approximate="tanh")
    y.sum().backward()
    return y.detach().double().numpy(), t.grad.double().numpy()


x64 = x.astype(np.float64)
u = K * (x64 + C * x64 ** 3)
e2u = np.exp(-2 * np.abs(u))
sech2 = 4 * e2u / (1 + e2u) ** 2
dth = np.minimum(EPS, sech2) + 3 * np.abs(u) * EPS * sech2  # abs error of tanh u in float32
ref_y, ref_g = torch_gelu(x64, torch.float64)
h = np.abs(0.5 * x64 * K * (1 + 3 * C * x64 ** 2))
TINY = 2.0 ** -149  # the smallest float32: no closer result exists
tol_y = 4 * EPS * np.abs(ref_y) * (2 + 3 * np.abs(u)) + 2 * np.abs(x64) * dth + TINY
tol_g = dth * (1 + 4 * h) + 2 * EPS * (0.5 * (1 + np.tanh(u)) + 5 * h * sech2) + TINY

t32_y, t32_g = torch_gelu(x, torch.float32)
chk.close("PyTorch float32 gelu (the tolerance's own check)", t32_y, ref_y, 0, tol_y)
chk.close("PyTorch float32 gelu' (the tolerance's own check)", t32_g, ref_g, 0, tol_g)

out = tempfile.mkdtemp(prefix="lmc_simd_math_")
xs.tofile(os.path.join(out, "x.f32"))
binary = os.path.join(UNIT_DIR, "test_simd_math")
r = subprocess.run([binary, "--gelu", os.path.join(out, "x.f32"), out], capture_output=True, text=True)
if r.returncode != 0:
    sys.stderr.write(r.stdout + r.stderr)
chk.true("helper wrote every path's values", r.returncode == 0, binary)
isas = sorted(f[5:-4] for f in os.listdir(out) if f.startswith("gelu_"))
chk.true("paths: c and others this CPU runs", "c" in isas, " ".join(isas))
n = len(x)
for isa in isas:
    y = np.fromfile(os.path.join(out, "gelu_%s.f32" % isa), dtype=np.float32)
    g = np.fromfile(os.path.join(out, "grad_%s.f32" % isa), dtype=np.float32)
    chk.true(isa + ": one value per input", len(y) == len(xs) and len(g) == len(xs))
    if len(y) != len(xs) or len(g) != len(xs):
        continue
    chk.close(isa + ": gelu vs PyTorch", y[:n], ref_y, 0, tol_y)
    chk.close(isa + ": gelu' vs PyTorch autograd", g[:n], ref_g, 0, tol_g)
    ty, tg = y[n:].astype(np.float64), g[n:].astype(np.float64)
    bound = np.abs(tail.astype(np.float64)) * np.exp(-86.0)
    chk.true(isa + ": x < -10: |gelu| <= |x| e^-86, gelu <= 0", bool(np.all((np.abs(ty) <= bound) & (ty <= 0))),
             "worst %.3g of the bound" % float(np.max(np.abs(ty) / bound)))
    chk.true(isa + ": x < -10: gelu' within 4 eps of 0", bool(np.all(np.abs(tg) <= 4 * EPS)),
             "max |gelu'| %.3g" % float(np.max(np.abs(tg))))
subprocess.run(["rm", "-rf", out])
chk.exit()
