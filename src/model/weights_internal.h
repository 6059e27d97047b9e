/* weights_internal.h: what the weights reader, the streaming writer and the
 * sharded index share: the HF tensors of a layout unit, and the parsed
 * model.safetensors.index.json. Not part of the public API. */
#ifndef LMC_WEIGHTS_INTERNAL_H
#define LMC_WEIGHTS_INTERNAL_H

#include "lmc/model.h"

typedef struct {
    lmc_hf_piece p;
    size_t at; /* flat buffer offset (floats) of the piece's first element */
} lmc_wpiece;

/* The HF tensors of a unit in buffer order; returns how many. out has room
 * for lmc_hf_unit_max_pieces(cfg). */
int lmc_weights_unit_pieces(const lmc_model_config *cfg, const lmc_layout *l, int unit, lmc_wpiece *out);
/* The same into a new array (free it), *n of them; NULL when out of memory
 * (lmc_err set). */
lmc_wpiece *lmc_weights_unit_list(const lmc_model_config *cfg, const lmc_layout *l, int unit, int *n);
size_t lmc_wpiece_numel(const lmc_wpiece *w);
/* The file's shape of a piece: (rows) for vectors, (cols, rows) when stored
 * transposed, else (rows, cols). Returns ndim. */
int lmc_wpiece_shape(const lmc_wpiece *w, int64_t shape[2]);

/* Whether a weights file carries the balancing bias (L,E): a mixture of
 * experts that balances by it (bias_step > 0) or whose bias is not all 0. */
int lmc_weights_keeps_bias(const lmc_model_config *cfg, const float *bias);
/* Whether unit's file entries end with its layer's bias (bias kept, NULL:
 * none): 1 with its name in name. */
int lmc_weights_unit_bias(const lmc_model_config *cfg, int unit, const float *bias, char *name, size_t n);

/* dir/config.json, atomically (what a saved folder holds beside weights). */
lmc_status lmc_weights_write_config(const char *dir, const lmc_model_config *cfg);

/* ---------- model.safetensors.index.json ---------- */

typedef struct {
    char *name;
    int file; /* into files[] */
    int used; /* a reader found it; what stays 0 on a whole load is extra */
} lmc_windex_entry;

typedef struct {
    char *path;     /* the index file, for messages */
    char **files;   /* distinct file names, sorted */
    int nfiles;
    lmc_windex_entry *map; /* sorted by name */
    int n;
} lmc_windex;

/* Parses the index text; `what` names it in errors. Checks that it is an
 * object with a weight_map object of string values, that no tensor appears
 * twice, that every file name stays inside the folder (not absolute, no
 * ".." component, not empty) and that metadata.total_size, when present,
 * is a non-negative integer. */
lmc_status lmc_windex_parse(const char *text, size_t len, const char *what, lmc_windex *ix);
void lmc_windex_free(lmc_windex *ix);
/* The entry of a tensor name, or NULL. */
lmc_windex_entry *lmc_windex_find(const lmc_windex *ix, const char *name);

#endif
