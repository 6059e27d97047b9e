#!/usr/bin/env bash
# bench_moe.sh: builds lmc's library (BUILD=build by default) and
# bench/bench_moe.c, then prints a mixture of experts' matmuls on the CPU
# (one matmul per expert, as the model runs them) beside one dense GEMM of
# the same total size, GFLOP/s forward and backward, uniform routing and a
# skewed one. Extra arguments go to the bench (e.g. --threads 2, --tokens 8192).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -j"$(nproc)" BUILD="$BUILD" "$BUILD/liblmc.a" >/dev/null
${CC:-cc} -O3 -g -std=gnu11 -fopenmp -Iinclude -Isrc bench/bench_moe.c "$BUILD/liblmc.a" -lm -lpthread \
    -o "$BUILD/bench_moe"
"$BUILD/bench_moe" "$@"
echo
"$BUILD/bench_moe" --skew 1 "$@"
