/* model.h: model configuration (GPT-2 and Llama families), presets, the
 * parameter layout, and the model's forward and backward passes written
 * once against the backend ops table. */
#ifndef LMC_MODEL_H
#define LMC_MODEL_H

#include "lmc/core.h"

typedef enum { LMC_NORM_LAYER = 0, LMC_NORM_RMS = 1 } lmc_norm_kind;
typedef enum { LMC_POS_LEARNED = 0, LMC_POS_ROPE = 1 } lmc_pos_kind;
typedef enum { LMC_MLP_GELU = 0, LMC_MLP_SWIGLU = 1 } lmc_mlp_kind;
/* A mixture-of-experts router: softmax over the experts, top-k, the k
 * weights renormalised (Mixtral); or sigmoid scores, top-k, the weights
 * normalised over the k (DeepSeek-V3). */
typedef enum { LMC_ROUTER_SOFTMAX = 0, LMC_ROUTER_SIGMOID = 1 } lmc_router_kind;

/* Activation recomputation in training: none keeps every intermediate;
 * selective recomputes the cheap ones in backward (norm outputs, the MLP
 * activation); full keeps each layer's input and reruns its forward. */
typedef enum { LMC_RECOMPUTE_NONE = 0, LMC_RECOMPUTE_SELECTIVE = 1, LMC_RECOMPUTE_FULL = 2 } lmc_recompute;

typedef struct {
    char family[16]; /* "gpt2" or "llama": tensor names and file conventions */
    int n_layer, n_head, n_kv_head, dim, ffn_dim; /* ffn_dim: MLP hidden size */
    int vocab, vocab_padded, max_seq;  /* vocab_padded: rows of wte/head (multiple of 64) */
    lmc_norm_kind norm;
    lmc_pos_kind pos;
    lmc_mlp_kind mlp;
    int bias; /* biases on linear layers and norms */
    int tied; /* output head shares the token embedding */
    float norm_eps, rope_theta;
    /* Mixture of experts (Llama family; n_expert 0: a dense model): layers
     * from first_dense on replace the MLP by a router to n_expert SwiGLU
     * experts of width moe_ffn, each token going to top_k of them, plus
     * n_shared always-on experts (one SwiGLU of width n_shared * moe_ffn);
     * the first first_dense layers keep the dense MLP (ffn_dim). aux_coef
     * weighs Hugging Face Mixtral's load-balancing loss in the objective. */
    int n_expert, top_k, n_shared, moe_ffn, first_dense;
    lmc_router_kind router;
    float aux_coef;
    /* DeepSeek-V3's auxiliary-loss-free balancing: after every training
     * step each expert's selection bias moves by this against its load (0:
     * off); config.json's moe_bias_step, an lmc extension */
    float bias_step;
} lmc_model_config;

/* Presets: gpt2 d6 d12 d24 d36 d48 (also gpt2, gpt2-medium, -large, -xl),
 * llama-15m llama-42m llama-110m llama-1b, moe-8x (8 experts, top-2).
 * Unknown names list the known. */
lmc_status lmc_config_preset(const char *name, lmc_model_config *c);
/* Names of all presets, NULL-terminated. */
const char *const *lmc_config_preset_names(void);
/* Recompute derived fields (vocab_padded) and check every field. */
lmc_status lmc_config_finish(lmc_model_config *c);
int lmc_config_head_dim(const lmc_model_config *c);
/* Whether layer l is a mixture-of-experts layer. */
static inline int lmc_config_is_moe(const lmc_model_config *c, int l)
{
    return c->n_expert > 0 && l >= c->first_dense;
}
/* Tensor parallelism over tp ranks: tp must divide the heads and the MLP
 * width, and divide the key/value heads or be a multiple of them (then each
 * kv head is replicated on tp / n_kv_head consecutive ranks). */
lmc_status lmc_config_check_tp(const lmc_model_config *c, int tp);
/* Key/value heads on each of tp ranks (1 when replicated). */
int lmc_config_tp_kv_heads(const lmc_model_config *c, int tp);
/* The first of them, on rank r. */
int lmc_config_tp_kv_first(const lmc_model_config *c, int tp, int r);

/* Parameter counts: all parameters (vocab, not padded), and those that take
 * part in matmuls (excludes position embeddings, norms and biases; includes
 * the output head, tied or not) for FLOP counts: of a mixture of experts
 * the active ones (router, top_k routed and the shared experts). */
double lmc_config_num_params(const lmc_model_config *c);
double lmc_config_matmul_params(const lmc_model_config *c);
/* Training FLOPs per token at sequence length T: 6 * matmul params +
 * 12 * layers * dim * T (attention scores and values, forward + backward;
 * PaLM appendix B, as llm.c counts it). */
double lmc_config_train_flops_per_token(const lmc_model_config *c, int T);

/* Hugging Face config.json (GPT2LMHeadModel / LlamaForCausalLM /
 * MixtralForCausalLM keys; a mixture of experts is written as model_type
 * mixtral, lmc's extensions as extra fields: scoring_func, n_shared_experts,
 * first_k_dense_replace, dense_intermediate_size). */
void lmc_config_to_hf_json(const lmc_model_config *c, lmc_sb *out);
lmc_status lmc_config_from_hf_json(const lmc_json *j, const char *what, lmc_model_config *c);
/* The same from the text of a config.json (n bytes); `what` names it in errors. */
lmc_status lmc_config_from_hf_text(const char *text, size_t n, const char *what, lmc_model_config *c);
/* A config file (HF config.json) or a preset name. */
lmc_status lmc_config_load(const char *preset_or_path, lmc_model_config *c);
void lmc_config_describe(const lmc_model_config *c, char *buf, size_t n);

/* ---------- parameter layout ----------
 * One flat fp32 buffer: [wte, wpe] [layer 0] ... [layer L-1] [norm_f, head].
 * Each layer's tensors are contiguous so its gradients can be reduced as a
 * bucket as soon as that layer's backward finishes. Internal linear weights
 * are (out, in) like torch.nn.Linear; fused projections stack rows:
 * qkv = [q; k; v], and for SwiGLU fc = [gate; up]. Offsets are aligned to
 * 16 floats. */
typedef enum {
    LMC_T_WTE, LMC_T_WPE, LMC_T_NORMF_W, LMC_T_NORMF_B, LMC_T_HEAD, LMC_T_GLOBAL_COUNT
} lmc_global_tensor;

/* A mixture-of-experts layer has no dense MLP: FC_W and PROJ_W hold its
 * shared experts (absent without), ROUTER_W the router (E, C), EXP_FC_W
 * every expert's [gate; up] stacked (E x 2F, C) and EXP_PROJ_W every
 * expert's down projection stacked (E x C, F): expert e's weights are
 * contiguous blocks, as one matmul per expert takes them. */
typedef enum {
    LMC_T_LN1_W, LMC_T_LN1_B, LMC_T_QKV_W, LMC_T_QKV_B, LMC_T_ATTN_W, LMC_T_ATTN_B,
    LMC_T_LN2_W, LMC_T_LN2_B, LMC_T_FC_W, LMC_T_FC_B, LMC_T_PROJ_W, LMC_T_PROJ_B,
    LMC_T_ROUTER_W, LMC_T_EXP_FC_W, LMC_T_EXP_PROJ_W, LMC_T_LAYER_COUNT
} lmc_layer_tensor;

typedef struct {
    size_t offset;  /* in floats; (size_t)-1 when the tensor does not exist */
    size_t rows, cols; /* cols = 1 for vectors */
    int decay;      /* AdamW weight decay applies (2-D tensors) */
} lmc_tensor_slot;

typedef struct {
    lmc_tensor_slot global[LMC_T_GLOBAL_COUNT];
    lmc_tensor_slot *layer; /* [n_layer][LMC_T_LAYER_COUNT] */
    int n_layer;
    size_t total;           /* floats in the buffer, padding included */
    int tp, vocab_split;    /* a tensor-parallel rank's part (lmc_layout_build_tp); 1, 0 when whole */
    /* A pipeline stage's part (lmc_layout_build_part): layers [layer_begin,
     * layer_end) and the embeddings unit (the first stage, and the last of a
     * tied model: its head) and the final unit (the last stage); the other
     * tensors are absent. 0, n_layer, 1, 1 when whole. */
    int layer_begin, layer_end, holds_embed, holds_final;
    unsigned char *held;    /* [n_layer]: the layers held (several ranges under interleaved pipelines) */
    /* An expert-parallel rank's part (lmc_layout_build_ep): experts
     * [ep_rank E/ep, (ep_rank + 1) E/ep) of each mixture-of-experts layer;
     * 1, 0 when all. */
    int ep, ep_rank;
    size_t *unit_at;        /* [units + 1]: unit u is [unit_at[u], unit_at[u + 1]), empty when not held */
} lmc_layout;

#define LMC_ABSENT ((size_t)-1)

lmc_status lmc_layout_build(const lmc_model_config *c, lmc_layout *l);
/* One tensor-parallel rank's part (tp divides the heads, kv heads and MLP
 * width): fused QKV and MLP fc rows and the output projections' columns
 * are 1/tp of the model's; with vocab_split (tp divides vocab_padded) also
 * the rows of the token embedding and the head (vocabulary-parallel);
 * everything else is whole (replicated). */
lmc_status lmc_layout_build_tp(const lmc_model_config *c, int tp, int vocab_split, lmc_layout *l);
/* The part of a pipeline stage holding layers [layer_begin, layer_end) (and
 * of a tensor-parallel rank, as lmc_layout_build_tp): its units in the same
 * order and padding as the whole layout's, so each held unit's floats are a
 * copy of the same unit's in the whole buffer (lmc_layout_copy_units). */
lmc_status lmc_layout_build_part(const lmc_model_config *c, int tp, int vocab_split, int layer_begin, int layer_end,
                                 lmc_layout *l);
/* The same for several layer ranges (interleaved pipeline chunks):
 * bounds[2i], bounds[2i + 1] are range i's first layer and end. */
lmc_status lmc_layout_build_chunks(const lmc_model_config *c, int tp, int vocab_split, int n, const int *bounds,
                                   lmc_layout *l);
/* Expert-parallel rank r of ep's part: every tensor whole except the
 * routed experts, of which it holds E/ep (rows [r E/ep, (r + 1) E/ep) of
 * the stacked [E, 2F, C] and [E, C, F] tensors); units as the whole
 * layout's. lmc_layout_tp_copy/_part move between it and the whole. */
lmc_status lmc_layout_build_ep(const lmc_model_config *c, int ep, int ep_rank, lmc_layout *l);
/* Pipeline stages: begin[s] is stage s's first layer (begin[pp] = n_layer).
 * spec "a,b,..." sets the layer counts by hand (they must sum to n_layer);
 * NULL or "" balances the cost: each layer's and the head's (and loss's)
 * matmul flops at sequence length T, the cut that minimises the largest
 * stage, every stage at least one layer. Errors name the flag. */
lmc_status lmc_pipeline_cut(const lmc_model_config *c, int T, int pp, const char *spec, int *begin);
/* Whether layout l holds unit u. */
int lmc_layout_holds(const lmc_layout *l, int unit);
/* Copies every unit both layouts hold (except the embeddings unit when
 * skip_embed) from src (layout ls) to dst (layout ld). */
void lmc_layout_copy_units(const lmc_layout *ld, float *dst, const lmc_layout *ls, const float *src, int skip_embed);
/* Whether a tensor of layout l is split over tensor-parallel ranks (else
 * replicated on each). */
int lmc_layout_tp_split(const lmc_layout *l, int layer, int kind);
/* Copies between the whole model's buffer (layout g) and tensor-parallel
 * rank r of tp's part (layout t; or, with t->ep > 1, t's expert-parallel
 * part): to_part 1 fills part from whole, 0 the reverse (the part's
 * elements only). */
void lmc_layout_tp_copy(const lmc_model_config *c, const lmc_layout *g, const lmc_layout *t, int tp, int r,
                        float *whole, float *part, int to_part);
/* Tensor-parallel rank r's part (layout t) of a whole host buffer, into a
 * new host buffer *part (lmc_free). */
lmc_status lmc_layout_tp_part(const lmc_model_config *c, const lmc_layout *t, int r, const float *whole,
                              float **part);
/* The one description of which whole elements a part holds (lmc_layout_tp_copy
 * is built on it): fn gets every run of rank r's part (layout t, as
 * lmc_layout_tp_copy takes it) in the whole layout g: n floats from whole
 * offset `whole` are the part's from `part` on. Tensor by tensor, each
 * tensor's runs ascending; a block of whole rows is one run. */
typedef void (*lmc_part_run_fn)(void *ctx, size_t whole, size_t part, size_t n);
void lmc_layout_part_runs(const lmc_model_config *c, const lmc_layout *g, const lmc_layout *t, int tp, int r,
                          lmc_part_run_fn fn, void *ctx);

/* ---------- what a rank reads at start-up ----------
 * A part map: runs of the whole model's flat buffer, each landing in the
 * rank's own buffer (of `floats` floats) at `at`, sorted by whole offset and
 * disjoint. The readers (weights and checkpoints, AdamW state, the init)
 * fill only these, so a rank of a tp/pp/ep job never holds the whole model. */
typedef struct {
    size_t whole, at, n;
} lmc_part_run;

typedef struct {
    lmc_part_run *r;
    size_t n, cap;
    size_t floats; /* the destination buffer's size */
} lmc_part_map;

/* Part elements [begin, end) go to the destination from `at` on (ZeRO-3:
 * a rank's shards of its pieces, packed). */
typedef struct {
    size_t begin, end, at;
} lmc_part_window;

/* Rank r's part (layout t, as lmc_layout_tp_copy's) of the whole model:
 * the part's elements inside the windows (w NULL: the whole part, at its
 * own offsets, floats = t->total). */
lmc_status lmc_part_map_build(const lmc_model_config *c, const lmc_layout *t, int r, const lmc_part_window *w,
                              int nw, lmc_part_map *m);
/* A map of one run: whole elements [begin, end) at 0 (no allocation: run
 * is its storage). */
lmc_part_map lmc_part_map_range(lmc_part_run *run, size_t begin, size_t end);
void lmc_part_map_free(lmc_part_map *m);
/* The index of the first run ending after whole offset b (m->n: none). */
size_t lmc_part_map_find(const lmc_part_map *m, size_t b);
/* Whether any run meets whole elements [b, e). */
int lmc_part_map_meets(const lmc_part_map *m, size_t b, size_t e);
/* Floats the runs hold in all (what a reader must cover). */
size_t lmc_part_map_count(const lmc_part_map *m);
/* Each run's floats from a whole host buffer into dst. */
void lmc_part_map_gather(const lmc_part_map *m, const float *whole, float *dst);
void lmc_layout_free(lmc_layout *l);
const lmc_tensor_slot *lmc_layout_slot(const lmc_layout *l, int layer, int kind);
/* Gradient buckets in the order backward completes them: bucket 0 is
 * norm_f + head, buckets 1..L are layers L-1..0, bucket L+1 the embeddings.
 * [begin, end) in floats. */
int lmc_layout_num_buckets(const lmc_layout *l);
void lmc_layout_bucket(const lmc_layout *l, int bucket, size_t *begin, size_t *end);
/* Units: the same ranges in the buffer's own order, the grain of ZeRO-3's
 * gathers and of sharded weight files: unit 0 the embeddings, units
 * 1..L layers 0..L-1, unit L+1 norm_f + head. Unit u is bucket L+1-u. */
int lmc_layout_num_units(const lmc_layout *l);
void lmc_layout_unit(const lmc_layout *l, int unit, size_t *begin, size_t *end);
/* Floats in the largest of units [first, units). */
size_t lmc_layout_max_unit(const lmc_layout *l, int first);
/* The unit holding a slot (layer -1: a global tensor; a tied head is wte's). */
int lmc_layout_unit_of(const lmc_layout *l, int layer, int kind);
/* Display name of a slot ("h.3.qkv_w") for messages. */
void lmc_layout_slot_name(int layer, int kind, char *buf, size_t n);

/* ---------- Hugging Face names ----------
 * An internal tensor is one or more HF tensors stacked by rows; GPT-2's
 * Conv1D weights are stored transposed, (in, out). */
typedef struct {
    char name[112];
    size_t row0, rows, cols; /* the internal rows [row0, row0+rows) x cols */
    int transpose;           /* stored in the file as (cols, rows) */
} lmc_hf_piece;

/* Piece i of an internal tensor into *out: 1, or 0 past its last piece (a
 * tensor with no HF counterpart, as a tied head, has none). qkv has 3
 * pieces, SwiGLU's fc 2, the experts' fc 2 per expert and their down
 * projections 1 per expert (Mixtral's experts.E.w1/w3/w2). */
int lmc_hf_piece_at(const lmc_model_config *c, int layer, int kind, int i, lmc_hf_piece *out);
/* The name of layer l's balancing bias (DeepSeek-V3's per-expert
 * selection bias, [n_expert] fp32, not a parameter): 1, or 0 for a layer
 * without experts. */
int lmc_hf_moe_bias_name(const lmc_model_config *c, int l, char *buf, size_t n);
/* The most pieces one layout unit (a layer) can have. */
int lmc_hf_unit_max_pieces(const lmc_model_config *c);

/* Loads weights from a .safetensors file, a folder holding
 * model.safetensors (+ config.json), or a sharded folder holding
 * model.safetensors.index.json (the folder or the index file's path). The
 * config comes from the "lmc_config" metadata of the (first) file, else
 * config.json beside it, else the tensor shapes (GPT-2 with 64-dim heads).
 * *params is a host buffer of layout->total floats (free with lmc_free). */
lmc_status lmc_weights_load(const char *path, lmc_model_config *cfg, lmc_layout *layout, float **params);
/* Writes HF-named fp32 tensors with the config in the metadata; a path
 * ending in '/' or naming a directory gets model.safetensors + config.json. */
lmc_status lmc_weights_save(const char *path, const lmc_model_config *cfg, const lmc_layout *layout,
                            const float *params);
/* The elements [begin, end) of the flat parameter buffer into dst (end -
 * begin floats), from a single file or a sharded folder (what
 * lmc_weights_load accepts), reading only the tensors that meet the range,
 * with at most one tensor of temporary memory; padding reads as zero. cfg
 * and *layout are outputs as in lmc_weights_load (free the layout with
 * lmc_layout_free). begin == end reads only the config (dst may be NULL). */
lmc_status lmc_weights_load_range(const char *path, lmc_model_config *cfg, lmc_layout *layout, size_t begin,
                                  size_t end, float *dst);
/* The runs of a part map (lmc_part_map_build over the model's config: read
 * it first with begin == end) into dst (m->floats floats, zeroed first),
 * reading only those elements: a memcpy per run from the mapped file, a
 * GPT-2 transposed tensor staged whole (one tensor at most). Every tensor
 * is checked (shapes, no unexpected ones) as a whole load checks them. A
 * GGUF file is read whole and cut (its tensors may be quantized in blocks). */
lmc_status lmc_weights_load_part(const char *path, lmc_model_config *cfg, lmc_layout *layout, const lmc_part_map *m,
                                 float *dst);

/* ---------- streaming and sharded weights ----------
 * Hugging Face's sharded layout: model-00001-of-0000N.safetensors files
 * holding whole layout units, and model.safetensors.index.json mapping
 * each tensor name to its file. A distributed job writes each file from
 * the ranks that own its units, one unit at a time; no process needs the
 * whole model. */
typedef struct lmc_weights_writer lmc_weights_writer;

/* A safetensors file at path (written to a temp name beside it) for the HF
 * tensors of units [unit_begin, unit_end), in unit order, with lmc_config
 * metadata. The header, every offset included, is written now. The layout
 * must outlive the writer. */
lmc_status lmc_weights_writer_open(lmc_weights_writer **w, const char *path, const lmc_model_config *cfg,
                                   const lmc_layout *l, int unit_begin, int unit_end);
/* Writes one unit: unit_params holds its floats [begin, end) as
 * lmc_layout_unit gives them. Units must arrive in order. Extra memory: at
 * most one tensor (GPT-2's transposed Conv1D weights). */
lmc_status lmc_weights_writer_unit(lmc_weights_writer *w, int unit, const float *unit_params);
/* Checks that every unit arrived, then fsyncs and renames the file into
 * place (as lmc_write_file_atomic). Frees w, also on failure (the temp
 * file is then removed). */
lmc_status lmc_weights_writer_close(lmc_weights_writer *w);
/* Removes the temp file and frees w (NULL is a no-op). */
void lmc_weights_writer_abort(lmc_weights_writer *w);

/* "model-00001-of-00003.safetensors" for k = 0, n = 3 (k is 0-based). */
void lmc_weights_shard_name(int k, int n, char *buf, size_t len);
/* Cuts the units into nfiles contiguous groups, file k holding units
 * [unit_first[k], unit_first[k+1]), so that the largest file is as small
 * as it can be (bytes counted as the units' floats in the buffer, padding
 * included: a bound on the file's data). nfiles is clamped to [1, units]
 * and the clamped count returned: every file holds at least one unit.
 * unit_first needs max(nfiles, 1) + 1 entries; those past the clamped count
 * are set to the number of units (files past it would be empty). */
int lmc_weights_split(const lmc_layout *l, int nfiles, int *unit_first);
/* How many files max_file_bytes (HF's max_shard_size) asks for: the fewest
 * that keep each file within it when whole units go to files (bytes
 * counted as in lmc_weights_split, so files come out a little smaller); a
 * unit larger than the limit gets a file of its own. 0: no limit, 1 file.
 * lmc_weights_split to that count keeps every file within the limit. */
int lmc_weights_files_for(const lmc_layout *l, size_t max_file_bytes);
/* Writes dir/model.safetensors.index.json ({"metadata": {"total_size"},
 * "weight_map"}) for files split as unit_first, and dir/config.json, each
 * atomically. */
lmc_status lmc_weights_write_index(const char *dir, const lmc_model_config *cfg, const lmc_layout *l, int nfiles,
                                   const int *unit_first);
/* The whole buffer as a sharded folder: the files for max_file_bytes
 * (lmc_weights_files_for), then the index, last, so a crash never leaves an
 * index naming missing files. Afterwards a model.safetensors in dir (which
 * lmc_weights_load would prefer) and shards of another file count are
 * removed. */
lmc_status lmc_weights_save_sharded(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                    const float *params, size_t max_file_bytes);
/* DeepSeek-V3's balancing bias in weights files. moe_bias (n_layer x
 * n_expert, host; the rows of layers without experts unused; NULL: none)
 * is written as each MoE layer's lmc_hf_moe_bias_name tensor ([E] fp32,
 * after the layer's other tensors, in its file) when the model balances
 * by it (bias_step > 0) or any of it is nonzero. The _moe writers take
 * it; the others write none. */
lmc_status lmc_weights_save_moe(const char *path, const lmc_model_config *cfg, const lmc_layout *layout,
                                const float *params, const float *moe_bias);
lmc_status lmc_weights_save_sharded_moe(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                        const float *params, size_t max_file_bytes, const float *moe_bias);
lmc_status lmc_weights_writer_open_moe(lmc_weights_writer **w, const char *path, const lmc_model_config *cfg,
                                       const lmc_layout *l, int unit_begin, int unit_end, const float *moe_bias);
lmc_status lmc_weights_write_index_moe(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                       int nfiles, const int *unit_first, const float *moe_bias);
/* The same savers fed one unit at a time: next() gives unit u's floats
 * ([begin, end) of lmc_layout_unit, valid until the next call), units in
 * order, each once; a failure ends the save with it. So a job whose ranks
 * each hold a part of the model writes it without holding it whole. */
typedef struct {
    lmc_status (*next)(void *ctx, const lmc_layout *l, int unit, const float **unit_params);
    void *ctx;
} lmc_unit_source;
lmc_status lmc_weights_save_from(const char *path, const lmc_model_config *cfg, const lmc_layout *l,
                                 const lmc_unit_source *src, const float *moe_bias);
lmc_status lmc_weights_save_sharded_from(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                         const lmc_unit_source *src, size_t max_file_bytes, const float *moe_bias);
/* Reads it from what lmc_weights_load reads into bias (n_layer x n_expert,
 * zeros where absent): *found is 1 when the file holds it (every MoE
 * layer's, each [E], finite), 0 when it holds none (a GGUF file, a dense
 * model, weights saved without it); some layers' but not all is an error
 * naming the missing tensor. */
lmc_status lmc_weights_load_moe_bias(const char *path, const lmc_model_config *cfg, float *bias, int *found);
/* GPT-2 style init: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)),
 * norm gains 1, biases 0; deterministic in seed, per tensor. */
void lmc_weights_init(const lmc_model_config *cfg, const lmc_layout *layout, float *params, uint64_t seed);
/* The same values for the elements [begin, end) only, into dst (end -
 * begin floats): a rank of a sharded job initialises just its shard. */
lmc_status lmc_weights_init_range(const lmc_model_config *cfg, const lmc_layout *l, size_t begin, size_t end,
                                  float *dst, uint64_t seed);
/* The same values for a part map's runs into dst (m->floats floats, zeroed
 * first): each tensor's random stream is drawn up to its last run only, and
 * the draws before a run are skipped at the cost of the 64-bit draws alone,
 * so no memory beyond the part is needed. */
void lmc_weights_init_part(const lmc_model_config *cfg, const lmc_layout *l, const lmc_part_map *m, float *dst,
                           uint64_t seed);

#endif
