"""compare.py: checks for the MPI tests (weights and JSONL logs).

  compare.py weights A B TOL        max |a - b| over every tensor <= TOL
  compare.py differ A B TOL         some tensor differs by more than TOL (the test can fail)
  compare.py losses A B RTOL [FIRST LAST]   per-step losses (and the data position) agree
  compare.py field LOG KEY [STEP]   prints a field of the last (or a given) step
  compare.py noise A B [C ...]      prints the largest max |x - y| over every pair of
                                    the files (a tolerance: one process computing the
                                    same batch other ways)
  compare.py lossnoise A B [C ...]  the same for the per-step losses (relative)
Prints one line per check; exits non-zero on failure."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracle"))
import numpy as np  # noqa: E402
from lmc_util import st_read  # noqa: E402


def max_diff(a, b):
    ta, _ = st_read(a)
    tb, _ = st_read(b)
    if sorted(ta) != sorted(tb):
        raise SystemExit("FAIL tensor names differ: %s vs %s" % (a, b))
    worst, name = 0.0, ""
    for k in ta:
        d = float(np.max(np.abs(ta[k].astype(np.float64) - tb[k]))) if ta[k].size else 0.0
        if d > worst:
            worst, name = d, k
    return worst, name


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    cmd = sys.argv[1]
    if cmd in ("weights", "differ"):
        a, b, tol = sys.argv[2], sys.argv[3], float(sys.argv[4])
        d, name = max_diff(a, b)
        ok = d <= tol if cmd == "weights" else d > tol
        rel = "<=" if cmd == "weights" else ">"
        print("%s %s: max |diff| %.3g (%s) %s %.3g" % ("ok  " if ok else "FAIL", cmd, d, name, rel, tol))
        sys.exit(0 if ok else 1)
    if cmd == "noise":
        f = sys.argv[2:]
        print("%.9g" % max(max_diff(f[i], f[j])[0] for i in range(len(f)) for j in range(i + 1, len(f))))
        sys.exit(0)
    if cmd == "lossnoise":
        logs = [read_log(p) for p in sys.argv[2:]]
        print("%.9g" % max(abs(x["loss"] - y["loss"]) / abs(y["loss"])
                           for i in range(len(logs)) for j in range(i + 1, len(logs))
                           for x, y in zip(logs[i], logs[j])))
        sys.exit(0)
    if cmd == "losses":
        a, b, rtol = read_log(sys.argv[2]), read_log(sys.argv[3]), float(sys.argv[4])
        first = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        last = int(sys.argv[6]) if len(sys.argv) > 6 else 1 << 30
        ra = {r["step"]: r for r in a if first <= r["step"] <= last}
        rb = {r["step"]: r for r in b if first <= r["step"] <= last}
        if not ra or sorted(ra) != sorted(rb):
            print("FAIL losses: steps %s vs %s" % (sorted(ra), sorted(rb)))
            sys.exit(1)
        worst = max(abs(ra[s]["loss"] - rb[s]["loss"]) / abs(rb[s]["loss"]) for s in ra)
        tokens_ok = all(ra[s]["tokens"] == rb[s]["tokens"] for s in ra)
        ok = worst <= rtol and tokens_ok
        print("%s losses of steps %d-%d: max rel diff %.3g <= %.3g; data position equal: %s" % (
            "ok  " if ok else "FAIL", min(ra), max(ra), worst, rtol, tokens_ok))
        sys.exit(0 if ok else 1)
    if cmd == "field":
        log, key = read_log(sys.argv[2]), sys.argv[3]
        rec = log[-1] if len(sys.argv) < 5 else [r for r in log if r["step"] == int(sys.argv[4])][0]
        v = rec[key]
        print(" ".join(str(x) for x in v) if isinstance(v, list) else v)
        sys.exit(0)
    raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
