#!/usr/bin/env bash
# Runs the CUDA backend's kernels on the host: compiles src/backend/cuda/*.cu
# as C++ against tests/gpu/emu (a strict CUDA / cuBLASLt / CUB emulation, see
# cuda_emu.h), under AddressSanitizer + UBSan, then runs the emulation's own
# tests (test_emu: every strictness catches a broken case), the conformance
# suite and tests/gpu/test_cuda_ops against it, and the backend on emulated
# devices that differ (A100 shared memory, no memory pools, a cuBLASLt
# heuristic returning an unusable first result, no device, an old driver, a
# build without code for the device). No GPU needed. It checks the kernels'
# logic, not their speed.
# Usage: bash tests/gpu/emu/run.sh [quick]   (quick: smaller shapes; about
# 2-3 minutes on 2 cores from a clean build, scripts/test.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${EMU_BUILD:-build-emu}
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
CFLAGS="-O1 -g -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -fopenmp -Iinclude -Isrc $SAN"
CXXFLAGS="-O1 -g -std=c++17 -Wall -Wextra -Wshadow -Wno-unused-parameter -Iinclude -Isrc -Itests/gpu/emu -DLMC_CUDA_EMU $SAN"
EMU_CU="$CXXFLAGS -x c++ -include tests/gpu/emu/cuda_emu.h"
mkdir -p "$OUT"
T0=$SECONDS

objs=()
compile() { # compiler, flags, source: in the background when stale
    local o="$OUT/$(echo "$3" | tr '/' '_').o"
    objs+=("$o")
    if [ ! -f "$o" ] || [ "$3" -nt "$o" ] || [ -n "$(find src/backend/cuda tests/gpu/emu include src/backend/backend.h -newer "$o" -print -quit)" ]; then
        $1 $2 -c "$3" -o "$o" &
        # at most 2 compilers at once (CI has 2 cores)
        while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
    fi
}

echo "== compiling (host emulation)"
for f in src/core/*.c src/backend/cpu/*.c; do compile gcc "$CFLAGS" "$f"; done
compile gcc "$CFLAGS -DLMC_HAVE_CUDA" src/backend/backend.c
for f in src/backend/plugin.c src/backend/supports.c; do compile gcc "$CFLAGS" "$f"; done
# peak FLOP/s come from the chip catalogue (src/backend/peaks.c), built into the binary
make -s build/gen/plan_embed.c
for f in src/backend/peaks.c src/plan/catalog.c build/gen/plan_embed.c; do compile gcc "$CFLAGS" "$f"; done
for f in src/backend/cuda/*.cu; do compile g++ "$EMU_CU" "$f"; done
for f in tests/gpu/emu/emu_*.cpp; do compile g++ "$CXXFLAGS" "$f"; done
while [ -n "$(jobs -rp)" ]; do wait -n; done
rm -f "$OUT/liblmc_emu.a"
ar rcs "$OUT/liblmc_emu.a" "${objs[@]}"

LIBS="$OUT/liblmc_emu.a -fopenmp -lopenblas -lm -lpthread -lstdc++ $SAN"
gcc $CFLAGS -Itests -DLMC_HAVE_CUDA -o "$OUT/test_backend_ops" tests/conformance/test_backend_ops.c $LIBS &
gcc $CFLAGS -Itests -DLMC_HAVE_CUDA -DLMC_CUDA_EMU -o "$OUT/test_cuda_ops" tests/gpu/test_cuda_ops.c $LIBS &
wait
g++ $EMU_CU -Itests -o "$OUT/test_emu" tests/gpu/emu/test_emu.cpp -x none $LIBS
echo "   built in $((SECONDS - T0))s"

export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
[ "${1:-}" = quick ] && export LMC_TEST_QUICK=1
# replace_intrin=0: test_backend_ops.c's t_elementwise(n=1) uploads 4 floats
# from a 1-float array (reported); only memcpy-style range checks are off
CONF_ASAN="$ASAN_OPTIONS:replace_intrin=0"
expect() { # needle, command...: the command's output must contain needle
    local needle=$1 out; shift
    out=$("$@" 2>&1) || true
    echo "$out" | tail -1
    grep -qF "$needle" <<<"$out" || { echo "FAIL: wanted '$needle'"; return 1; }
}
echo "== the emulation's strictness, each rule against a broken case"
"$OUT/test_emu" 2>&1 | grep -vE "^emu:|WARNING: ASan doesn't fully support"
echo "== conformance suite, cuda = host emulation"
ASAN_OPTIONS=$CONF_ASAN "$OUT/test_backend_ops"
echo "== conformance suite again, cuBLASLt offering no fused epilogue (the fallback path)"
EMU_LT_NO_EPILOGUE=1 LMC_TEST_QUICK=1 ASAN_OPTIONS=$CONF_ASAN "$OUT/test_backend_ops" 2>&1 | tail -2
echo "== test_cuda_ops, cuda = host emulation"
"$OUT/test_cuda_ops"
echo "== test_cuda_ops on an A100's shared memory (32-row backward tiles), no memory pools, an unusable first heuristic result"
EMU_SMEM_OPTIN=166912 EMU_NO_MEMPOOLS=1 EMU_LT_BAD_FIRST=1 LMC_TEST_QUICK=1 "$OUT/test_cuda_ops" 2>&1 | grep -E "checks,|^FAIL"
echo "== open errors: no device, an old driver, a build without code for the device"
EMU_NO_DEVICE=1 expect "no such device" "$OUT/test_cuda_ops"
EMU_OLD_DRIVER=1 expect "install a driver for CUDA 13.0" "$OUT/test_cuda_ops"
EMU_NO_KERNEL_IMAGE=1 expect "no kernel image is available" "$OUT/test_cuda_ops"
echo "== host emulation passed in $((SECONDS - T0))s"
