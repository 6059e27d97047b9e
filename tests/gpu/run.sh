#!/usr/bin/env bash
# The GPU check for the CUDA backend and the NCCL communicator: one script,
# time-boxed for a short GPU session (about 5 minutes on an H100/H200 with
# 16 cores; every step has its own timeout, and the whole run stops within
# BUDGET seconds, 540 by default, so it fits a 10-minute command limit).
#   0. driver and toolkit versions: a driver older than the toolkit (CUDA 13
#      needs R580+) is named as such, not reported as "no GPU"
#   1. build (make -j16) the library, the conformance suite and lmc
#   2. the conformance suite under compute-sanitizer memcheck
#      (CUDA_LAUNCH_BLOCKING=1: an error names its launch), then racecheck on
#      a small attention case, then the misaligned-pointer matmuls in a
#      process of their own (a fault there is sticky)
#   3. tests/gpu/test_cuda_ops: model-sized shapes, determinism, memory
#   4. tests/gpu/test_nccl: the NCCL communicator on this GPU (one rank)
#   5. op benchmarks (matmul TFLOP/s, attention, xent, embedding backward on
#      Zipf-distributed tokens beside uniform ones and the CPU) at GPT-2 shapes
#   6. a d12 training benchmark on synthetic tokens: tokens/s, MFU, peak memory
# Usage: bash tests/gpu/run.sh [outdir]      (logs and a summary land in outdir)
# Exit status: 1 if a correctness step (2-4) failed, 2 if no usable GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${OUT:-/tmp/lmc-gpu}}
BUILD=${BUILD:-build}
JOBS=${JOBS:-16}
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/train.jsonl
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
T0=$SECONDS
fail=0
nogpu=0
note() { echo "$*" | tee -a "$SUMMARY"; }
BUDGET=${BUDGET:-540} # the whole run, seconds: every step gets at most what is left
step() { # name, timeout seconds, command...
    local name=$1 limit=$2; shift 2
    local t=$SECONDS left=$((BUDGET - (SECONDS - T0)))
    if [ $left -lt 15 ]; then
        note "$(printf '%-14s skipped: out of time' "$name")"
        return 124
    fi
    [ $limit -gt $left ] && limit=$left
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    note "$(printf '%-14s rc=%-3d %4ds' "$name" "$rc" $((SECONDS - t)))"
    return $rc
}

note "lmc GPU check: $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) files changed"

# 0. versions: the GPU, its driver and the CUDA version the driver supports,
# and the toolkit's; a driver older than the toolkit cannot run what we build
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")}
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$SUMMARY"
DRIVER_CUDA=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)
TOOLKIT_CUDA=$("$CUDA_HOME/bin/nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
note "driver supports CUDA ${DRIVER_CUDA:-?}; toolkit (nvcc) CUDA ${TOOLKIT_CUDA:-?} at $CUDA_HOME"
OLD_DRIVER=0
if [ -n "$DRIVER_CUDA" ] && [ -n "$TOOLKIT_CUDA" ] &&
    [ "$(printf '%s\n%s\n' "$DRIVER_CUDA" "$TOOLKIT_CUDA" | sort -V | head -1)" != "$TOOLKIT_CUDA" ]; then
    OLD_DRIVER=1
    note "DRIVER TOO OLD: it supports CUDA $DRIVER_CUDA, the toolkit is $TOOLKIT_CUDA (CUDA 13 needs driver R580 or" \
        "newer): kernels cannot run; update the driver or build with a CUDA $DRIVER_CUDA toolkit"
fi
SANITIZER=$(command -v compute-sanitizer || ls "$CUDA_HOME"/bin/compute-sanitizer "$CUDA_HOME"/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)

# 1. build: the pieces the checks need first, so an unrelated broken tool
# does not stop the backend checks
step build 300 make -j"$JOBS" BUILD="$BUILD" "$BUILD/liblmc.a" "$BUILD/liblmc_cuda.so" "$BUILD/tests/conformance/test_backend_ops" ||
    { note "build failed: see $OUT/build.log"; exit 1; }
step build-lmc 200 make -j"$JOBS" BUILD="$BUILD" "$BUILD/lmc" || note "(lmc did not build: no training benchmark)"
# the CUDA backend is the plugin $BUILD/liblmc_cuda.so; these tests link it directly
LIBS="-Wl,--whole-archive $BUILD/liblmc.a -Wl,--no-whole-archive -rdynamic $PWD/$BUILD/liblmc_cuda.so"
LIBS="$LIBS -Wl,-rpath,$PWD/$BUILD -fopenmp -lm -lpthread -ldl -L$CUDA_HOME/lib64 -Wl,-rpath,$CUDA_HOME/lib64"
LIBS="$LIBS -lcublasLt -lcublas -lcudart -lstdc++"
[ -f /usr/include/microhttpd.h ] && LIBS="$LIBS -lmicrohttpd"
command -v mpicc >/dev/null && [ -f src/dist/mpi.c ] && LIBS="$LIBS $(mpicc --showme:link)"
CFLAGS="-O2 -g -std=gnu11 -Wall -Iinclude -Isrc -Itests -fopenmp -I$CUDA_HOME/include"
for t in test_cuda_ops test_nccl; do
    gcc $CFLAGS -o "$BUILD/tests/gpu_$t" "tests/gpu/$t.c" $LIBS >>"$OUT/build.log" 2>&1 ||
        { note "tests/gpu/$t.c did not build (see build.log)"; fail=1; }
done

# 2-4. correctness
if [ -n "$SANITIZER" ]; then
    step memcheck 200 env CUDA_LAUNCH_BLOCKING=1 LMC_TEST_QUICK=1 "$SANITIZER" --tool memcheck --leak-check no \
        --error-exitcode 1 "$BUILD/tests/conformance/test_backend_ops" || fail=1
    grep -E "skip cuda|^FAIL|checks,|ERROR SUMMARY|Invalid|misaligned" "$OUT/memcheck.log" | head -20 | tee -a "$SUMMARY"
    step racecheck 90 "$SANITIZER" --tool racecheck --racecheck-report all --error-exitcode 1 \
        "$BUILD/tests/gpu_test_cuda_ops" --only t_attention_small || fail=1
    grep -E "^FAIL|checks,|RACECHECK SUMMARY|hazard" "$OUT/racecheck.log" | head -10 | tee -a "$SUMMARY"
else
    note "compute-sanitizer not found: conformance without memcheck, no racecheck"
    step conformance 150 "$BUILD/tests/conformance/test_backend_ops" || fail=1
    grep -E "skip cuda|^FAIL|checks," "$OUT/conformance.log" | head -20 | tee -a "$SUMMARY"
fi
if grep -qh "skip cuda" "$OUT/memcheck.log" "$OUT/conformance.log" 2>/dev/null; then
    if [ $OLD_DRIVER = 1 ]; then
        note "OLD DRIVER: the CUDA backend could not open (driver CUDA $DRIVER_CUDA < toolkit $TOOLKIT_CUDA)"
    else
        note "NO USABLE GPU: the CUDA backend was not opened, so nothing GPU-side was checked: $(grep -h "skip cuda" \
            "$OUT/memcheck.log" "$OUT/conformance.log" 2>/dev/null | head -1)"
    fi
    nogpu=1
fi
step misaligned 60 "$BUILD/tests/gpu_test_cuda_ops" --only t_matmul_misaligned || fail=1
grep -E "^FAIL|checks,|lmc:" "$OUT/misaligned.log" | head -10 | tee -a "$SUMMARY"
step cuda_ops 150 "$BUILD/tests/gpu_test_cuda_ops" || fail=1
grep -E "^info|^FAIL|checks,|skip" "$OUT/cuda_ops.log" | head -20 | tee -a "$SUMMARY"
step nccl 60 "$BUILD/tests/gpu_test_nccl" || fail=1
grep -E "^FAIL|checks,|skip" "$OUT/nccl.log" | tee -a "$SUMMARY"

# 5. op benchmarks
step bench_ops 90 "$BUILD/tests/gpu_test_cuda_ops" --bench
grep -E "matmul|attention|xent|embed|peak" "$OUT/bench_ops.log" >>"$SUMMARY"

# 6. training benchmark on synthetic GPT-2 tokens (llm.c shard format)
if [ -x "$BUILD/lmc" ] && [ $nogpu = 0 ] && [ $((BUDGET - (SECONDS - T0))) -gt 60 ]; then
    cat >"$OUT/mkshard.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
int main(int argc, char **argv) {
    uint32_t n = 20u << 20, x = 1; int32_t h[256] = {20240520, 1, (int32_t)n};
    FILE *f = fopen(argv[1], "wb"); if (!f) return 1;
    fwrite(h, 4, 256, f);
    for (uint32_t i = 0; i < n; i++) { x = x * 1664525u + 1013904223u; uint16_t t = (uint16_t)((x >> 8) % 50257); fwrite(&t, 2, 1, f); }
    return fclose(f) != 0;
}
EOF
    gcc -O2 -o "$OUT/mkshard" "$OUT/mkshard.c" && "$OUT/mkshard" "$OUT/train_000.bin"
    (nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$OUT/mem.log" 2>/dev/null &
     echo $! >"$OUT/mem.pid")
    step train 200 "$BUILD/lmc" train --device cuda --model d12 --data "$OUT/train_000.bin" --batch 16 --seq 1024 \
        --grad-accum 4 --precision bf16 --steps 20 --log "$OUT/train.jsonl"
    kill "$(cat "$OUT/mem.pid")" 2>/dev/null
    note "train log (last steps):"
    tail -n 3 "$OUT/train.jsonl" 2>/dev/null | tee -a "$SUMMARY"
    # steady state: the mean over the last 10 steps (the first ones warm up)
    tail -n 10 "$OUT/train.jsonl" 2>/dev/null | sed -n 's/.*"tokens_per_s":\([0-9.e+-]*\).*"mfu":\([0-9.e+-]*\).*/\1 \2/p' |
        awk '{t += $1; m += $2; n++} END {if (n) printf "train d12 bf16 B16 T1024 x4: %.0f tokens/s, MFU %.1f%% (mean of last %d steps)\n", t / n, 100 * m / n, n}' |
        tee -a "$SUMMARY"
    note "peak device memory: $(sort -n "$OUT/mem.log" 2>/dev/null | tail -1) MiB (nvidia-smi, whole GPU)"
else
    note "training benchmark skipped (no lmc binary, no usable GPU, or out of time)"
fi

if [ $nogpu = 1 ]; then
    note "total $((SECONDS - T0))s; $([ $OLD_DRIVER = 1 ] && echo "DRIVER TOO OLD" || echo "NO USABLE GPU"): nothing was verified"
    exit 2
fi
note "total $((SECONDS - T0))s; correctness $([ $fail = 0 ] && echo PASSED || echo FAILED)"
echo "summary: $SUMMARY"
exit $fail
