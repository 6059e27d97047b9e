/* gguf_internal.h: what the GGUF model reader and exporter share: the
 * tensors of a layout unit under llama.cpp's names. Not public API. */
#ifndef LMC_GGUF_INTERNAL_H
#define LMC_GGUF_INTERNAL_H

#include "lmc/gguf.h"

/* One GGUF tensor of the model. Its elements lie in our flat buffer as
 * rows x cols from `at` (our (out, in) order, which is llama.cpp's ne =
 * [cols, rows]); a 1-D tensor is one row of n. GPT-2's Conv1D weights
 * need no transposition here (GGUF stores them as nn.Linear does). A 3-D
 * tensor (llama.cpp's stacked experts, ne = [cols, rows, n3]) is n3 such
 * matrices, the x-th from at + x * stride3. */
typedef struct {
    char name[64];
    size_t rows, cols, at;
    size_t n3, stride3; /* 1, 0 for 1-D and 2-D tensors */
    int ndim;
    /* > 0: Llama's q or k weight with this many heads, whose rows llama.cpp
     * keeps in its rope order (the converter's permute): within a head of
     * hs rows, HF row j * hs/2 + i is row 2i + j in the file */
    int heads;
} lmc_gguf_piece;

#define LMC_GGUF_UNIT_MAX_PIECES 16

/* The tensors of layout unit u in buffer order; returns how many. */
int lmc_gguf_unit_pieces(const lmc_model_config *cfg, const lmc_layout *l, int u, lmc_gguf_piece *out);
/* The file row that holds our row r of a piece. */
size_t lmc_gguf_file_row(const lmc_gguf_piece *p, size_t r);
/* The architecture (general.architecture) a config maps to, or an error
 * naming the setting llama.cpp's gpt2 / llama architectures cannot hold. */
lmc_status lmc_gguf_check_config(const lmc_model_config *cfg);

#endif
