/* model.h: model configuration (GPT-2 and Llama families), presets, the
 * parameter layout, and the model's forward and backward passes written
 * once against the backend ops table. */
#ifndef LMC_MODEL_H
#define LMC_MODEL_H

#include "lmc/core.h"

typedef enum { LMC_NORM_LAYER = 0, LMC_NORM_RMS = 1 } lmc_norm_kind;
typedef enum { LMC_POS_LEARNED = 0, LMC_POS_ROPE = 1 } lmc_pos_kind;
typedef enum { LMC_MLP_GELU = 0, LMC_MLP_SWIGLU = 1 } lmc_mlp_kind;

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
} lmc_model_config;

/* Presets: gpt2 d6 d12 d24 d36 d48 (also gpt2, gpt2-medium, -large, -xl),
 * llama-15m llama-42m llama-110m llama-1b. Unknown names list the known. */
lmc_status lmc_config_preset(const char *name, lmc_model_config *c);
/* Names of all presets, NULL-terminated. */
const char *const *lmc_config_preset_names(void);
/* Recompute derived fields (vocab_padded) and check every field. */
lmc_status lmc_config_finish(lmc_model_config *c);
int lmc_config_head_dim(const lmc_model_config *c);

/* Parameter counts: all parameters (vocab, not padded), and those that take
 * part in matmuls (excludes position embeddings, norms and biases; includes
 * the output head, tied or not) for FLOP counts. */
double lmc_config_num_params(const lmc_model_config *c);
double lmc_config_matmul_params(const lmc_model_config *c);
/* Training FLOPs per token at sequence length T: 6 * matmul params +
 * 12 * layers * dim * T (attention scores and values, forward + backward;
 * PaLM appendix B, as llm.c counts it). */
double lmc_config_train_flops_per_token(const lmc_model_config *c, int T);

/* Hugging Face config.json (GPT2LMHeadModel / LlamaForCausalLM keys). */
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

typedef enum {
    LMC_T_LN1_W, LMC_T_LN1_B, LMC_T_QKV_W, LMC_T_QKV_B, LMC_T_ATTN_W, LMC_T_ATTN_B,
    LMC_T_LN2_W, LMC_T_LN2_B, LMC_T_FC_W, LMC_T_FC_B, LMC_T_PROJ_W, LMC_T_PROJ_B, LMC_T_LAYER_COUNT
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
} lmc_layout;

#define LMC_ABSENT ((size_t)-1)

lmc_status lmc_layout_build(const lmc_model_config *c, lmc_layout *l);
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

int lmc_hf_pieces(const lmc_model_config *c, int layer, int kind, lmc_hf_piece out[3]);

/* Loads weights from a .safetensors file or a folder holding
 * model.safetensors (+ config.json). The config comes from the file's
 * "lmc_config" metadata, else config.json beside it, else the tensor shapes
 * (GPT-2 with 64-dim heads). *params is a host buffer of layout->total
 * floats (free with lmc_free). */
lmc_status lmc_weights_load(const char *path, lmc_model_config *cfg, lmc_layout *layout, float **params);
/* Writes HF-named fp32 tensors with the config in the metadata; a path
 * ending in '/' or naming a directory gets model.safetensors + config.json. */
lmc_status lmc_weights_save(const char *path, const lmc_model_config *cfg, const lmc_layout *layout,
                            const float *params);
/* GPT-2 style init: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)),
 * norm gains 1, biases 0; deterministic in seed, per tensor. */
void lmc_weights_init(const lmc_model_config *cfg, const lmc_layout *layout, float *params, uint64_t seed);

#endif
