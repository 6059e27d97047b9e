#!/usr/bin/env bash
# bench_decode.sh: builds lmc (BUILD=build by default) and bench/bench_decode.c,
# then prints single-stream decode tokens/s for fp32, bf16 and int8 weights
# beside the memory-bandwidth limit measured in the same run, and aggregate
# tokens/s with 1, 4 and 16 concurrent streams. Extra arguments go to the
# bench (e.g. --quick, --model d6, --threads 2, --tokens 64).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -j"$(nproc)" BUILD="$BUILD" "$BUILD/liblmc.a" >/dev/null
LIBS="-lopenblas -lm -lpthread -ldl" # and what the library was built with (MPI, libmicrohttpd)
SYMS=$(nm "$BUILD/liblmc.a" 2>/dev/null)
if grep -q " U MPI_Comm_size" <<<"$SYMS"; then LIBS="$(mpicc --showme:link) $LIBS"; fi
if grep -q " U MHD_start_daemon" <<<"$SYMS"; then LIBS="-lmicrohttpd $LIBS"; fi
${CC:-cc} -O3 -g -std=gnu11 -fopenmp -Iinclude -Isrc bench/bench_decode.c "$BUILD/liblmc.a" $LIBS -o "$BUILD/bench_decode"
exec "$BUILD/bench_decode" "$@"
