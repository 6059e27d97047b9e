# lmc build. `make` builds build/lmc; `make test` runs the whole suite.
# The CUDA backend is built when nvcc is found; MPI when mpicc is found.

BUILD   ?= build
CC      ?= gcc
OPT     ?= -O3
SAN     ?=
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -fopenmp -fno-math-errno \
           -Iinclude -Isrc $(SAN) -MMD -MP
LDLIBS  += -lopenblas -lm -lpthread
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
  LDFLAGS += $(shell $(MPICC) --showme:link)
endif

ifneq ($(MHD),)
  CFLAGS += -DLMC_HAVE_MHD
  LDLIBS += -lmicrohttpd
endif

CUDA_OBJ :=
ifneq ($(NVCC),)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDA_SRC  := $(wildcard src/backend/cuda/*.cu)
  CUDA_OBJ  := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
  NVFLAGS   ?= -O3 -std=c++17 -arch=sm_90 -Xcompiler -fPIC -Iinclude -Isrc
  ifneq ($(CUDA_SRC),)
    CFLAGS  += -DLMC_HAVE_CUDA -I$(CUDA_HOME)/include
    LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
    ifneq ($(wildcard $(CUDA_HOME)/lib64/libnccl.so),)
      CFLAGS  += -DLMC_HAVE_NCCL
      LDLIBS  += -lnccl
      SRC     += $(wildcard src/dist/nccl.c)
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
all: $(BIN) $(UNIT_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(LIB): $(OBJ) $(CUDA_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(TOOL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(LIB) tests/test.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

test: all
	bash scripts/test.sh

test-unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do echo "== $$t"; $$t || exit 1; done

clean:
	rm -rf $(BUILD)

-include $(OBJ:.o=.d) $(TOOL_OBJ:.o=.d)
