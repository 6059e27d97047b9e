# lmc build. `make` builds build/lmc; `make test` runs the whole suite.
# The CUDA backend is built when nvcc is found; MPI when mpicc is found.

BUILD   ?= build
CC      ?= gcc
OPT     ?= -O3
SAN     ?=
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -fopenmp -fno-math-errno \
           -Iinclude -Isrc $(SAN) -MMD -MP
LDLIBS  += -lm -lpthread
LDFLAGS += -fopenmp $(SAN)

NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
MPICC   ?= $(shell command -v mpicc 2>/dev/null)
MHD     ?= $(shell test -f /usr/include/microhttpd.h && echo yes)

SRC := $(wildcard src/core/*.c src/backend/*.c src/backend/cpu/*.c src/model/*.c src/train/*.c \
                  src/dist/*.c src/tokenizer/*.c src/infer/*.c src/serve/*.c src/plan/*.c src/report/*.c src/launch/*.c)
SRC := $(filter-out src/dist/mpi.c src/dist/mpi_p2p.c src/dist/nccl.c src/dist/hccl.c,$(SRC))

ifneq ($(and $(MPICC),$(wildcard src/dist/mpi.c)),)
  SRC     += src/dist/mpi.c src/dist/mpi_p2p.c
  # C programs that tests/mpi/*.sh run under mpirun
  MPI_TEST_BIN := $(BUILD)/tests/mpi/test_mpi_p2p $(BUILD)/tests/mpi/test_mpi_hier
  CFLAGS  += -DLMC_HAVE_MPI $(shell $(MPICC) --showme:compile)
  LDLIBS  += $(shell $(MPICC) --showme:link)
endif

ifneq ($(MHD),)
  CFLAGS += -DLMC_HAVE_MHD
  LDLIBS += -lmicrohttpd
endif

# The CUDA backend (and the NCCL communicator) form a plugin,
# $(BUILD)/liblmc_cuda.so, loaded only when a run asks for --device cuda or
# --dist nccl: lmc starts fast and runs on machines without CUDA libraries.
#
# CUDA_ARCHS: the GPUs the kernels are compiled for (increasing order), as
# machine code, plus PTX of the last one. The default, 80 90, runs on A100,
# A10, A40, L4, L40S (sm_86/89 run sm_80 code), H100 and H200, and on newer
# GPUs through the PTX (compiled by the driver at first use). Each arch adds
# build time (on 2 cores: sm_90 alone ~30 s, 80 90 ~47 s, 80 86 89 90 ~65 s);
# CUDA_ARCHS="80 86 89 90" tunes for A10/L40S too. After changing it, make clean.
# NCCL is found in NCCL_HOME, the CUDA toolkit, or the system's library
# directories (Debian/Ubuntu's libnccl-dev); without it the plugin has no
# --dist nccl, and make says so.
CUDA_OBJ :=
CUDA_PLUGIN :=
ifneq ($(NVCC),)
  CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDA_SRC   := $(wildcard src/backend/cuda/*.cu)
  CUDA_OBJ   := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
  CUDA_ARCHS ?= 80 90
  NVARCH     := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(lastword $(CUDA_ARCHS)),code=compute_$(lastword $(CUDA_ARCHS))
  NVFLAGS    ?= -O3 -std=c++17 $(NVARCH) -Xcompiler -fPIC -Iinclude -Isrc
  NCCL_DIRS  := $(if $(NCCL_HOME),$(NCCL_HOME)/lib $(NCCL_HOME)/lib64) $(CUDA_HOME)/lib64 \
                /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null) /usr/lib64 /usr/lib
  NCCL_LIB   := $(firstword $(foreach d,$(NCCL_DIRS),$(if $(wildcard $(d)/libnccl.so),$(d))))
  NCCL_INC   := $(firstword $(foreach d,$(if $(NCCL_HOME),$(NCCL_HOME)/include) $(CUDA_HOME)/include /usr/include,\
                  $(if $(wildcard $(d)/nccl.h),$(d))))
  ifneq ($(CUDA_SRC),)
    CUDA_PLUGIN := $(BUILD)/liblmc_cuda.so
    PLUGIN_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
    ifneq ($(and $(NCCL_LIB),$(NCCL_INC)),)
      CUDA_OBJ    += $(BUILD)/plugin/src/dist/nccl.o
      PLUGIN_LIBS += -L$(NCCL_LIB) -Wl,-rpath,$(NCCL_LIB) -lnccl
    else
      $(info lmc: NCCL not found (libnccl.so and nccl.h in NCCL_HOME, $(CUDA_HOME) or /usr): the CUDA plugin is built without --dist nccl)
    endif
  endif
endif
# Backend plugins (liblmc_NAME.so) are also looked for in the build folder,
# after $LMC_PLUGIN_DIR and the lmc binary's folder: test programs do not
# live beside them (src/backend/plugin.c).
CFLAGS += -DLMC_PLUGIN_BUILD_DIR='"$(abspath $(BUILD))"'
OBJ := $(SRC:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/liblmc.a
BIN := $(BUILD)/lmc
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c tests/conformance/test_*.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)

.PHONY: all test test-unit clean
all: $(BIN) $(UNIT_BIN) $(MPI_TEST_BIN) $(CUDA_PLUGIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -DLMC_CUDA_ARCHS='"$(CUDA_ARCHS)"' -c $< -o $@

# plugin objects: position independent, with the CUDA headers
$(BUILD)/plugin/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -I$(CUDA_HOME)/include $(if $(filter-out $(CUDA_HOME)/include,$(NCCL_INC)),-I$(NCCL_INC)) -c $< -o $@

$(CUDA_PLUGIN): $(CUDA_OBJ)
	$(CC) -shared -o $@ $^ $(PLUGIN_LIBS) $(SAN) $(if $(filter -DLMC_HAVE_MPI,$(CFLAGS)),$(shell $(MPICC) --showme:link))

$(LIB): $(OBJ)
	@rm -f $@
	ar rcs $@ $^

# the whole library and exported symbols: the plugin calls back into lmc
WHOLE_LIB = -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive -rdynamic -ldl

$(BIN): $(TOOL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(WHOLE_LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(LIB) tests/test.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(WHOLE_LIB) $(LDFLAGS) $(LDLIBS)

test: all
	bash scripts/test.sh

test-unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do echo "== $$t"; $$t || exit 1; done

clean:
	rm -rf $(BUILD)

-include $(OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(CUDA_OBJ:.o=.d)

# ---- planner ----------------------------------------------------------------
# `lmc plan` reads its chip catalogue and model shapes from share/; they are
# compiled into the binary (a generated C file of bytes) so lmc works from any
# directory. Edit share/chips.json or add share/models/NAME.json and rebuild.
PLAN_SHARE   := share/chips.json share/runs.json $(sort $(wildcard share/models/*.json))
PLAN_EMBED_C := $(BUILD)/gen/plan_embed.c
PLAN_EMBED_O := $(BUILD)/gen/plan_embed.o

$(PLAN_EMBED_C): $(PLAN_SHARE)
	@mkdir -p $(dir $@)
	@{ echo '/* generated from share/ by the Makefile (planner section): do not edit */'; \
	   echo '#include <stddef.h>'; \
	   echo 'struct lmc_plan_embed_file { const char *path; const char *data; size_t len; };'; \
	   i=0; for f in $(PLAN_SHARE); do \
	     echo "static const char f$$i[] = {"; \
	     od -An -v -tx1 "$$f" | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	     echo '0};'; i=$$((i+1)); \
	   done; \
	   echo 'extern const struct lmc_plan_embed_file lmc_plan_embed_files[];'; \
	   echo 'const struct lmc_plan_embed_file lmc_plan_embed_files[] = {'; \
	   i=0; for f in $(PLAN_SHARE); do \
	     echo "    {\"$$f\", f$$i, sizeof f$$i - 1},"; i=$$((i+1)); \
	   done; \
	   echo '    {0, 0, 0}};'; } > $@.tmp && mv $@.tmp $@

$(PLAN_EMBED_O): $(PLAN_EMBED_C)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(PLAN_EMBED_O)

# ---- bench: GEMM (bench/bench_gemm.c) --------------------------------------
# `make bench` builds the benchmarks; `make bench-gemm` runs the GEMM one
# (BENCH_ARGS, e.g. "--quick --threads 2", are passed through).
.PHONY: bench bench-gemm
bench: $(BUILD)/bench/bench_gemm

$(BUILD)/bench/bench_gemm: bench/bench_gemm.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) -lopenblas

bench-gemm: $(BUILD)/bench/bench_gemm
	$< $(BENCH_ARGS)

# ---- fuzz: every parser of user bytes (tests/fuzz/, docs/reliability.md) ---
# `make fuzz` (or fuzz-build) builds one libFuzzer binary per parser,
# $(FUZZ_BUILD)/fuzz_<name>, with clang and ASan+UBSan: json, config,
# safetensors, shards, tokenizer, serve (the request parser), weights_index,
# gguf, report (the training-log reader), hostfile (lmc launch's host
# file and plan), checkpoint (what resuming reads), plan_runs (lmc plan
# --runs, --launch-log), plan_inputs (lmc plan --chips, --fleet),
# gguf_range (a rank's range of a .gguf model), calib (lmc plan
# --calibrate-log, --save-calibration) and http (lmc serve's HTTP layer: two
# real servers in process, on an engine). They link against an instrumented
# archive of the modules that read user bytes, so each pulls in just what its
# parser needs.
# `make fuzz-smoke` runs each a fixed number of times from its seeds (CI);
# `make fuzz-tokenizer`, `make fuzz-weights` run one for FUZZ_SECONDS, and
# `bash tests/fuzz/run.sh SECONDS` runs them all, keeping corpora in
# $(FUZZ_BUILD)/corpus/<name>. Seeds come from lmc's own writers (each target
# writes its own when LMC_FUZZ_SEEDS is set); dictionaries are tests/fuzz/*.dict.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -g -O1 -std=gnu11 $(FUZZ_SAN) -fsanitize=fuzzer-no-link -fopenmp -Iinclude -Isrc -Itests/fuzz -MMD -MP \
                $(if $(MHD),-DLMC_HAVE_MHD)
FUZZ_NAMES   := json config safetensors shards tokenizer serve weights_index gguf report hostfile checkpoint plan_runs \
                plan_inputs gguf_range calib http
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_SRC := $(wildcard src/core/*.c src/model/*.c src/tokenizer/*.c src/report/*.c) src/train/data.c \
                src/train/checkpoint.c src/launch/hostfile.c src/launch/plan.c tests/fuzz/fuzz_common.c \
                tests/fuzz/fuzz_gguf_seeds.c
# the planner's cost model, the engine on the cpu backend and the server (fuzz_calib, fuzz_http)
FUZZ_LIB_SRC += $(wildcard src/plan/*.c src/backend/*.c src/backend/cpu/*.c src/infer/*.c src/serve/*.c) $(PLAN_EMBED_C) \
                $(filter-out src/dist/mpi.c src/dist/mpi_p2p.c src/dist/nccl.c src/dist/hccl.c,$(wildcard src/dist/*.c))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB     := $(FUZZ_BUILD)/liblmc_fuzz.a

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-tokenizer fuzz-weights
fuzz fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -fopenmp -o $@ $^ -lm -lpthread $(if $(MHD),-lmicrohttpd)

fuzz-smoke: $(FUZZ_BINS)
	FUZZ_BUILT=1 FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh --smoke

fuzz-tokenizer: $(FUZZ_BUILD)/fuzz_tokenizer
	FUZZ_BUILT=1 FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh $(FUZZ_SECONDS) tokenizer

fuzz-weights: $(FUZZ_BUILD)/fuzz_weights_index
	FUZZ_BUILT=1 FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh $(FUZZ_SECONDS) weights_index

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_NAMES:%=$(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.d)

# ---- Ascend NPU backend (src/backend/ascend, docs/ascend.md) ---------------
# $(BUILD)/liblmc_npu.so, always built: it needs no CANN headers (lmc's own
# declarations, acl_decls.h) and opens CANN's libraries with dlopen at
# --device npu, from $LMC_ASCEND_LIBDIR or $ASCEND_TOOLKIT_HOME/lib64. It
# also holds the HCCL communicator (src/dist/hccl.c, --dist hccl).
NPU_SRC    := $(wildcard src/backend/ascend/*.c) src/dist/hccl.c
NPU_OBJ    := $(NPU_SRC:%.c=$(BUILD)/npu/%.o)
NPU_PLUGIN := $(BUILD)/liblmc_npu.so
all: $(NPU_PLUGIN)

$(BUILD)/npu/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(NPU_PLUGIN): $(NPU_OBJ)
	$(CC) -shared -o $@ $^ $(SAN) -ldl -lm -lpthread $(if $(filter -DLMC_HAVE_MPI,$(CFLAGS)),$(shell $(MPICC) --showme:link))

-include $(NPU_OBJ:.o=.d)
