#!/usr/bin/env bash
# Runs the CUDA backend's kernels on the host: compiles src/backend/cuda/*.cu
# as C++ against tests/gpu/emu (a CUDA / cuBLASLt / CUB emulation), under
# AddressSanitizer + UBSan, then runs the conformance suite and
# tests/gpu/test_cuda_ops.c against it. No GPU needed; a few minutes on 2
# cores. It checks the kernels' logic, not their speed (see cuda_emu.h).
# Usage: bash tests/gpu/emu/run.sh [quick]     (quick: smaller shapes)
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${EMU_BUILD:-build-emu}
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
CFLAGS="-O1 -g -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -fopenmp -Iinclude -Isrc $SAN"
CXXFLAGS="-O1 -g -std=c++17 -Wall -Wextra -Wshadow -Wno-unused-parameter -Iinclude -Isrc -Itests/gpu/emu -DLMC_CUDA_EMU $SAN"
mkdir -p "$OUT"

objs=()
compile() { # compiler, flags, source
    local o="$OUT/$(echo "$3" | tr '/' '_').o"
    if [ ! -f "$o" ] || [ "$3" -nt "$o" ] || [ -n "$(find src/backend/cuda tests/gpu/emu include src/backend/backend.h -newer "$o" -print -quit)" ]; then
        $1 $2 -c "$3" -o "$o"
    fi
    objs+=("$o")
}

echo "== compiling (host emulation)"
for f in src/core/*.c src/backend/cpu/*.c; do compile gcc "$CFLAGS" "$f" & done; wait
for f in src/core/*.c src/backend/cpu/*.c; do objs+=("$OUT/$(echo "$f" | tr '/' '_').o"); done
compile gcc "$CFLAGS -DLMC_HAVE_CUDA" src/backend/backend.c
for f in src/backend/cuda/*.cu; do
    compile g++ "$CXXFLAGS -x c++ -include tests/gpu/emu/cuda_emu.h" "$f"
done
compile g++ "$CXXFLAGS" tests/gpu/emu/emu.cpp
ar rcs "$OUT/liblmc_emu.a" "${objs[@]}"

LIBS="$OUT/liblmc_emu.a -fopenmp -lopenblas -lm -lpthread -lstdc++ $SAN"
gcc $CFLAGS -Itests -DLMC_HAVE_CUDA -o "$OUT/test_backend_ops" tests/conformance/test_backend_ops.c $LIBS
gcc $CFLAGS -Itests -DLMC_HAVE_CUDA -DLMC_CUDA_EMU -o "$OUT/test_cuda_ops" tests/gpu/test_cuda_ops.c $LIBS

export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
[ "${1:-}" = quick ] && export LMC_TEST_QUICK=1
# replace_intrin=0: test_backend_ops.c's t_elementwise(n=1) uploads 4 floats
# from a 1-float array (reported); only memcpy-style range checks are off
CONF_ASAN="$ASAN_OPTIONS:replace_intrin=0"
echo "== conformance suite, cuda = host emulation"
ASAN_OPTIONS=$CONF_ASAN "$OUT/test_backend_ops"
echo "== conformance suite again, cuBLASLt offering no fused epilogue (the fallback path)"
EMU_LT_NO_EPILOGUE=1 LMC_TEST_QUICK=1 ASAN_OPTIONS=$CONF_ASAN "$OUT/test_backend_ops" 2>&1 | tail -3
echo "== test_cuda_ops, cuda = host emulation"
"$OUT/test_cuda_ops"
echo "== test_cuda_ops on a device with an A100's shared memory (the 32-row backward tiles)"
EMU_SMEM_OPTIN=166912 "$OUT/test_cuda_ops" 2>&1 | grep -E "checks,|^FAIL"
echo "== no device: the open error"
EMU_NO_DEVICE=1 "$OUT/test_cuda_ops" | tail -2
