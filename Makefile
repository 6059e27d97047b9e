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
                  src/dist/*.c src/tokenizer/*.c src/infer/*.c src/serve/*.c src/plan/*.c)
SRC := $(filter-out src/dist/mpi.c src/dist/nccl.c,$(SRC))

ifneq ($(and $(MPICC),$(wildcard src/dist/mpi.c)),)
  SRC     += src/dist/mpi.c
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
CUDA_OBJ :=
CUDA_PLUGIN :=
ifneq ($(NVCC),)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDA_SRC  := $(wildcard src/backend/cuda/*.cu)
  CUDA_OBJ  := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
  NVFLAGS   ?= -O3 -std=c++17 -arch=sm_90 -Xcompiler -fPIC -Iinclude -Isrc
  ifneq ($(CUDA_SRC),)
    CUDA_PLUGIN := $(BUILD)/liblmc_cuda.so
    CFLAGS      += -DLMC_CUDA_PLUGIN='"$(abspath $(CUDA_PLUGIN))"'
    PLUGIN_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
    ifneq ($(wildcard $(CUDA_HOME)/lib64/libnccl.so),)
      CUDA_OBJ    += $(BUILD)/plugin/src/dist/nccl.o
      PLUGIN_LIBS += -lnccl
    endif
  endif
endif
OBJ := $(SRC:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/liblmc.a
BIN := $(BUILD)/lmc
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c tests/conformance/test_*.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)

.PHONY: all test test-unit clean
all: $(BIN) $(UNIT_BIN) $(CUDA_PLUGIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

# plugin objects: position independent, with the CUDA headers
$(BUILD)/plugin/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -I$(CUDA_HOME)/include -c $< -o $@

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
PLAN_SHARE   := share/chips.json $(sort $(wildcard share/models/*.json))
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

# ---- fuzz: the tokenizer and the weights reader (tests/fuzz/) --------------
# `make fuzz-build` builds $(FUZZ_BUILD)/fuzz_tokenizer and
# $(FUZZ_BUILD)/fuzz_weights_index with clang's libFuzzer and ASan+UBSan (core
# plus the sources each one needs). `make fuzz-tokenizer` and
# `make fuzz-weights` run one for FUZZ_SECONDS (default 60), keeping its corpus
# in $(FUZZ_BUILD)/corpus[-weights] between runs; `make fuzz` runs both.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -Iinclude -Isrc
FUZZ_SRC     := $(wildcard src/core/*.c src/tokenizer/*.c)
FUZZ_WEIGHTS_SRC := $(wildcard src/core/*.c) $(addprefix src/model/,config.c layout.c hf_names.c safetensors.c \
                    weights.c weights_index.c weights_stream.c)
.PHONY: fuzz fuzz-build fuzz-tokenizer fuzz-weights
fuzz-build: $(FUZZ_BUILD)/fuzz_tokenizer $(FUZZ_BUILD)/fuzz_weights_index
fuzz: fuzz-tokenizer fuzz-weights

$(FUZZ_BUILD)/fuzz_tokenizer: tests/fuzz/fuzz_tokenizer.c $(FUZZ_SRC) $(wildcard src/tokenizer/*.h include/lmc/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_tokenizer.c $(FUZZ_SRC) -lm -lpthread

$(FUZZ_BUILD)/fuzz_weights_index: tests/fuzz/fuzz_weights_index.c $(FUZZ_WEIGHTS_SRC) \
                                  $(wildcard src/model/*.h include/lmc/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_weights_index.c $(FUZZ_WEIGHTS_SRC) -lm -lpthread

fuzz-tokenizer: $(FUZZ_BUILD)/fuzz_tokenizer
	@mkdir -p $(FUZZ_BUILD)/corpus
	@{ printf '\004{"format": "lmc-bpe", "version": 1, "pretokenizer": "gpt2", "vocab_size": 258, "byte_ids": ['; \
	   seq -s, 0 255 | tr -d '\n'; \
	   printf '], "merges": [[97, 98, 256]], "special_tokens": [{"id": 257, "content": "<s>"}]}'; \
	 } > $(FUZZ_BUILD)/corpus/seed-lmc-json
	@printf '\000Hello world, it'"'"'s 12:30 \303\251 \344\270\255\n\n  x' > $(FUZZ_BUILD)/corpus/seed-text
	$(FUZZ_BUILD)/fuzz_tokenizer -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(FUZZ_BUILD)/corpus

# the seeds (a good index and shard of the target's own tiny model) come from
# a first run that executes nothing else (-runs=0)
fuzz-weights: $(FUZZ_BUILD)/fuzz_weights_index
	@mkdir -p $(FUZZ_BUILD)/corpus-weights
	LMC_FUZZ_SEEDS=$(FUZZ_BUILD)/corpus-weights $< -runs=0 $(FUZZ_BUILD)/corpus-weights
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(FUZZ_BUILD)/corpus-weights
