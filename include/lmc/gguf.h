/* gguf.h: llama.cpp's GGUF format, both ways: a checked reader (every
 * count, size, offset and type is validated before use; errors name the
 * file and the key or tensor), a streaming writer, the mapping between
 * lmc's GPT-2 / Llama models and llama.cpp's "gpt2" / "llama"
 * architectures, and the byte-level BPE tokenizer as llama.cpp stores it
 * (tokenizer.ggml.model "gpt2"). Spec: ggml's docs/gguf.md (version 3,
 * little-endian). */
#ifndef LMC_GGUF_H
#define LMC_GGUF_H

#include <stdio.h>

#include "lmc/core.h"
#include "lmc/model.h"
#include "lmc/tokenizer.h"

/* ---------- the format ---------- */

#define LMC_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian uint32 */
#define LMC_GGUF_VERSION 3
#define LMC_GGUF_ALIGNMENT 32 /* default of general.alignment */
#define LMC_GGUF_MAX_DIMS 4

/* Metadata value types. */
typedef enum {
    LMC_GGUF_U8 = 0, LMC_GGUF_I8 = 1, LMC_GGUF_U16 = 2, LMC_GGUF_I16 = 3, LMC_GGUF_U32 = 4, LMC_GGUF_I32 = 5,
    LMC_GGUF_F32 = 6, LMC_GGUF_BOOL = 7, LMC_GGUF_STR = 8, LMC_GGUF_ARR = 9, LMC_GGUF_U64 = 10,
    LMC_GGUF_I64 = 11, LMC_GGUF_F64 = 12, LMC_GGUF_NTYPES
} lmc_gguf_vtype;

/* Tensor types (ggml_type numbers) that lmc reads and writes. A q8_0
 * block is 32 values: an fp16 scale d, then 32 int8 q; value = d * q. */
typedef enum { LMC_GGML_F32 = 0, LMC_GGML_F16 = 1, LMC_GGML_Q8_0 = 8, LMC_GGML_BF16 = 30 } lmc_ggml_type;
#define LMC_Q8_0_BLOCK 32
#define LMC_Q8_0_BYTES 34

/* general.file_type values (llama_ftype) */
enum { LMC_GGUF_FTYPE_F32 = 0, LMC_GGUF_FTYPE_F16 = 1, LMC_GGUF_FTYPE_Q8_0 = 7, LMC_GGUF_FTYPE_BF16 = 32 };

/* A string inside the file: not NUL-terminated, may hold any bytes. */
typedef struct {
    const char *s;
    size_t n;
} lmc_gguf_str;

typedef struct {
    char *key;               /* NUL-terminated copy */
    lmc_gguf_vtype type;     /* LMC_GGUF_ARR for arrays */
    lmc_gguf_vtype arr_type; /* element type of an array */
    uint64_t n;              /* elements of an array; 1 for a scalar */
    const uint8_t *data;     /* the value (numbers packed little-endian) */
    lmc_gguf_str *str;       /* strings (a STR value, or each element of a string array) */
} lmc_gguf_kv;

typedef struct {
    char *name;                       /* NUL-terminated copy */
    int ndim;                         /* 1..4 */
    uint64_t ne[LMC_GGUF_MAX_DIMS];   /* ne[0]: a row's length (innermost); unused dims are 1 */
    uint32_t type;                    /* an lmc_ggml_type */
    uint64_t offset, bytes;           /* within the data section */
    const uint8_t *data;
} lmc_gguf_tensor;

typedef struct {
    char *what;  /* the file's name in messages */
    lmc_mmap map; /* when opened from a file */
    uint32_t version;
    uint64_t alignment, data_offset, data_size;
    lmc_gguf_kv *kv;
    int n_kv;
    lmc_gguf_tensor *t;
    int n_tensors;
} lmc_gguf;

/* Parses n bytes (kept by reference: they must outlive g). Checks the
 * magic, the version (2 or 3), every count against the bytes left, every
 * string and array inside the file, unique keys and tensor names, the
 * alignment (a power of two), each tensor's dimensions (1..4, no overflow,
 * rows whole blocks), type (f32, f16, bf16, q8_0) and data (aligned,
 * inside the file). */
lmc_status lmc_gguf_parse(lmc_gguf *g, const uint8_t *data, size_t n, const char *what);
/* 1 when path names a .gguf file (not a folder). */
int lmc_gguf_is_path(const char *path);
/* Maps and parses a file. */
lmc_status lmc_gguf_open(lmc_gguf *g, const char *path);
void lmc_gguf_close(lmc_gguf *g);

const lmc_gguf_kv *lmc_gguf_find(const lmc_gguf *g, const char *key);
const lmc_gguf_tensor *lmc_gguf_tensor_find(const lmc_gguf *g, const char *name);
/* Typed getters. An absent key is an error naming it when required, else
 * LMC_OK with *out unchanged. Integers of any integer type are accepted
 * when the value lies in [lo, hi]; floats as F32 or F64; a type that does
 * not fit is an error naming the key, the type found and the one wanted. */
lmc_status lmc_gguf_get_int(const lmc_gguf *g, const char *key, int required, long long lo, long long hi,
                            long long *out);
lmc_status lmc_gguf_get_float(const lmc_gguf *g, const char *key, int required, double *out);
lmc_status lmc_gguf_get_bool(const lmc_gguf *g, const char *key, int required, int *out);
lmc_status lmc_gguf_get_str(const lmc_gguf *g, const char *key, int required, lmc_gguf_str *out);
/* An array of elem (strings: kv->str; numbers: lmc_gguf_arr_int). */
lmc_status lmc_gguf_get_arr(const lmc_gguf *g, const char *key, int required, lmc_gguf_vtype elem,
                            const lmc_gguf_kv **out);
/* Element i of an integer array (any integer type). */
long long lmc_gguf_arr_int(const lmc_gguf_kv *kv, uint64_t i);
const char *lmc_gguf_type_name(lmc_gguf_vtype t);
/* "F32", "Q8_0", ...; "type N" for numbers lmc does not know. */
const char *lmc_ggml_type_name(uint32_t type);

/* ---------- writing ---------- */

typedef struct lmc_gguf_writer lmc_gguf_writer;

/* Metadata and tensor infos are collected first; lmc_gguf_writer_begin
 * writes them to a temp file beside path; then each tensor's data in the
 * order added; lmc_gguf_writer_commit fsyncs and renames it into place. */
lmc_status lmc_gguf_writer_new(lmc_gguf_writer **w, const char *path);
void lmc_gguf_put_str(lmc_gguf_writer *w, const char *key, const char *s);
void lmc_gguf_put_u32(lmc_gguf_writer *w, const char *key, uint32_t v);
void lmc_gguf_put_f32(lmc_gguf_writer *w, const char *key, float v);
void lmc_gguf_put_bool(lmc_gguf_writer *w, const char *key, int v);
void lmc_gguf_put_str_arr(lmc_gguf_writer *w, const char *key, const lmc_gguf_str *v, size_t n);
void lmc_gguf_put_i32_arr(lmc_gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* A tensor of ndim dims (ne[0] innermost) and type; rows must be whole blocks. */
lmc_status lmc_gguf_add_tensor(lmc_gguf_writer *w, const char *name, int ndim, const uint64_t *ne, lmc_ggml_type type);
lmc_status lmc_gguf_writer_begin(lmc_gguf_writer *w);
/* The next tensor's data: exactly its size in bytes. */
lmc_status lmc_gguf_write_tensor(lmc_gguf_writer *w, const void *data, size_t bytes);
/* Checks that every tensor was written, then commits; frees w either way. */
lmc_status lmc_gguf_writer_commit(lmc_gguf_writer *w);
void lmc_gguf_writer_abort(lmc_gguf_writer *w);

/* ---------- tensor data (gguf_quant.c) ---------- */

/* Bytes of n values of type (n a whole number of blocks). */
size_t lmc_ggml_bytes(lmc_ggml_type type, uint64_t n);
/* fp32 -> type, as ggml's reference code: f16 and bf16 round to nearest
 * even; q8_0 takes d = max|x| / 127 per block (stored fp16) and
 * q = roundf(x / d). n must be a whole number of blocks. */
void lmc_ggml_encode(lmc_ggml_type type, const float *x, size_t n, void *dst);
/* type -> fp32: elements [first, first + count) of a tensor (q8_0: first
 * and count whole blocks). */
void lmc_ggml_decode(lmc_ggml_type type, const void *src, size_t first, size_t count, float *dst);
uint16_t lmc_fp32_to_fp16(float x);
float lmc_fp16_to_fp32(uint16_t h);
uint16_t lmc_fp32_to_bf16(float x);

/* ---------- models (gguf_model.c, gguf_export.c) ---------- */

/* The file types `lmc export --type` takes: "f32", "f16", "bf16", "q8_0". */
lmc_status lmc_gguf_ftype_parse(const char *s, int *ftype);
const char *lmc_gguf_ftype_name(int ftype);

/* What lmc_weights_load_range does for a .gguf file (weights.c hands
 * such paths over): the config from the architecture's metadata, the
 * layout, and elements [begin, end) of the flat buffer as fp32 (Llama's Q
 * and K rows permuted back to Hugging Face's order). */
lmc_status lmc_gguf_load_range(const char *path, lmc_model_config *cfg, lmc_layout *layout, size_t begin,
                               size_t end, float *dst);
lmc_status lmc_gguf_load(const char *path, lmc_model_config *cfg, lmc_layout *layout, float **params);
/* What lmc_weights_load_part does for a .gguf file: only the rows the part
 * map's runs meet are decoded, each run into dst at its offset. */
lmc_status lmc_gguf_load_part(const char *path, lmc_model_config *cfg, lmc_layout *layout, const lmc_part_map *m,
                              float *dst);
/* The whole model, or a part map's runs, from a parsed file (what
 * lmc_gguf_load and lmc_gguf_load_part do after opening it; the fuzz
 * target's entry points). */
lmc_status lmc_gguf_model_from(const lmc_gguf *g, lmc_model_config *cfg, lmc_layout *layout, float **params);
lmc_status lmc_gguf_model_part_from(const lmc_gguf *g, lmc_model_config *cfg, lmc_layout *layout,
                                    const lmc_part_map *m, float *dst);
/* general.file_type of a GGUF file (LMC_GGUF_FTYPE_*), for picking the
 * engine's weight type; -1 when absent. */
lmc_status lmc_gguf_file_type(const char *path, int *ftype);

/* Writes a model and its tokenizer as GGUF v3 (atomically): metadata for
 * llama.cpp's gpt2 or llama architecture, the tokenizer, and the tensors
 * under llama.cpp's names, 2-D weights in the file type (norms, biases and
 * position embeddings stay f32; a q8_0 tensor whose rows are not whole
 * blocks is written f16, as llama.cpp's converter does). name goes to
 * general.name. */
lmc_status lmc_gguf_export(const char *path, const char *name, const lmc_model_config *cfg,
                           const lmc_layout *layout, const float *params, const lmc_tokenizer *tok, int ftype);

/* ---------- the tokenizer (gguf_vocab.c, src/tokenizer/format_gguf.c) ---------- */

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum { LMC_GGUF_TOK_NORMAL = 1, LMC_GGUF_TOK_UNKNOWN = 2, LMC_GGUF_TOK_CONTROL = 3, LMC_GGUF_TOK_USER = 4,
       LMC_GGUF_TOK_UNUSED = 5, LMC_GGUF_TOK_BYTE = 6 };

/* A byte-level BPE as strings: normal tokens and merges ("left right")
 * spelled in GPT-2's byte alphabet (as in encoder.json and vocab.bpe),
 * special tokens as their text (CONTROL). */
typedef struct {
    int n;
    lmc_gguf_str *tokens;
    int32_t *types;
    int n_merges;
    lmc_gguf_str *merges;
    char *blob; /* owns the strings when built by lmc_tok_to_vocab */
} lmc_tok_vocab;

/* The tokenizer's tokens, padded to n_vocab (the model's rows) with
 * UNUSED "[PADi]" tokens as llama.cpp's converter pads them. Fails when two
 * tokens would have the same text (llama.cpp needs them distinct). */
lmc_status lmc_tok_to_vocab(const lmc_tokenizer *tok, int n_vocab, lmc_tok_vocab *v);
void lmc_tok_vocab_free(lmc_tok_vocab *v);
/* Builds a tokenizer from such strings (trailing UNUSED "[PAD...]" tokens
 * dropped; CONTROL and USER_DEFINED tokens are special); `what` names the
 * source in messages. Everything is checked as for GPT-2's files. */
lmc_status lmc_tok_from_vocab(const lmc_tok_vocab *v, const char *what, lmc_tokenizer **out);

/* The tokenizer of a GGUF file (tokenizer.ggml.model "gpt2" with a
 * pre-tokenizer that splits as GPT-2's regex does): what lmc_tok_load
 * does for a path ending in .gguf. */
lmc_status lmc_gguf_tok_load(const char *path, lmc_tokenizer **out);
/* The same from a parsed file. */
lmc_status lmc_gguf_tok_from(const lmc_gguf *g, lmc_tokenizer **out);
/* The pre-tokenizer names (tokenizer.ggml.pre) llama.cpp splits with
 * GPT-2's regex: lmc writes the first, "gpt-2". */
int lmc_gguf_pre_is_gpt2(const char *s, size_t n);

/* ---------- lmc export ---------- */
typedef struct {
    const char *model;     /* weights (.safetensors, HF folder, or .gguf) */
    const char *tokenizer; /* NULL: the model's, when it is a .gguf */
    const char *format;    /* "gguf" */
    const char *type;      /* weight type: f32 | f16 | bf16 | q8_0 */
    const char *out;       /* the file, written atomically */
    const char *name;      /* general.name; NULL: the model file's base name */
    FILE *log;             /* one line: what was written */
} lmc_export_opts;

/* Loads the model and tokenizer and writes them as GGUF (lmc_gguf_export). */
lmc_status lmc_export_run(const lmc_export_opts *o);

#endif
