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
/* A config file (HF config.json) or a preset name. */
lmc_status lmc_config_load(const char *preset_or_path, lmc_model_config *c);
void lmc_config_describe(const lmc_model_config *c, char *buf, size_t n);

#endif
