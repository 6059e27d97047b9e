/* config.c: model presets, validation, parameter and FLOP counts, and
 * Hugging Face config.json in both directions. */
#include "lmc/model.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds of every size, checked by lmc_config_finish and, field by field,
 * by the config.json reader before anything is derived from a value. */
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_DIM 65536
#define MAX_FFN (1 << 20)
#define MAX_VOCAB (1 << 24)
#define MAX_SEQ (1 << 20)
#define MAX_EXPERTS 512
#define MAX_SHARED 64

static void gpt2(lmc_model_config *c, int layers, int heads, int dim)
{
    memset(c, 0, sizeof *c);
    strcpy(c->family, "gpt2");
    c->n_layer = layers;
    c->n_head = c->n_kv_head = heads;
    c->dim = dim;
    c->ffn_dim = 4 * dim;
    c->vocab = 50257;
    c->max_seq = 1024;
    c->norm = LMC_NORM_LAYER;
    c->pos = LMC_POS_LEARNED;
    c->mlp = LMC_MLP_GELU;
    c->bias = 1;
    c->tied = 1;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
}

static void llama(lmc_model_config *c, int layers, int heads, int kv, int dim, int ffn, int tied)
{
    memset(c, 0, sizeof *c);
    strcpy(c->family, "llama");
    c->n_layer = layers;
    c->n_head = heads;
    c->n_kv_head = kv;
    c->dim = dim;
    c->ffn_dim = ffn;
    c->vocab = 32000;
    c->max_seq = 2048;
    c->norm = LMC_NORM_RMS;
    c->pos = LMC_POS_ROPE;
    c->mlp = LMC_MLP_SWIGLU;
    c->bias = 0;
    c->tied = tied;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
}

/* A Llama whose every layer is a mixture of E experts of width F, top k,
 * Mixtral's router and an auxiliary loss weighted as Switch Transformer's
 * (0.01). */
static void moe(lmc_model_config *c, int layers, int heads, int dim, int E, int k, int F)
{
    llama(c, layers, heads, heads, dim, F, 1);
    c->n_expert = E;
    c->top_k = k;
    c->moe_ffn = F;
    c->router = LMC_ROUTER_SOFTMAX;
    c->aux_coef = 0.01f;
}

static const char *const preset_names[] = {
    "d6", "d12", "d24", "d36", "d48", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl",
    "llama-15m", "llama-42m", "llama-110m", "llama-1b", "moe-8x", NULL,
};

const char *const *lmc_config_preset_names(void) { return preset_names; }

lmc_status lmc_config_preset(const char *name, lmc_model_config *c)
{
    if (!strcmp(name, "d6"))
        gpt2(c, 6, 6, 384);
    else if (!strcmp(name, "d12") || !strcmp(name, "gpt2"))
        gpt2(c, 12, 12, 768);
    else if (!strcmp(name, "d24") || !strcmp(name, "gpt2-medium"))
        gpt2(c, 24, 16, 1024);
    else if (!strcmp(name, "d36") || !strcmp(name, "gpt2-large"))
        gpt2(c, 36, 20, 1280);
    else if (!strcmp(name, "d48") || !strcmp(name, "gpt2-xl"))
        gpt2(c, 48, 25, 1600);
    else if (!strcmp(name, "llama-15m")) /* llama2.c's stories15M shape */
        llama(c, 6, 6, 6, 288, 768, 1);
    else if (!strcmp(name, "llama-42m")) /* stories42M */
        llama(c, 8, 8, 8, 512, 1376, 1);
    else if (!strcmp(name, "llama-110m")) /* stories110M */
        llama(c, 12, 12, 12, 768, 2048, 1);
    else if (!strcmp(name, "llama-1b")) /* TinyLlama 1.1B */
        llama(c, 22, 32, 4, 2048, 5632, 0);
    else if (!strcmp(name, "moe-8x")) { /* 8 experts, top-2, GPT-2's vocabulary: 103M total, 51M active */
        moe(c, 8, 8, 512, 8, 2, 704);
        c->vocab = 50257;
        c->max_seq = 1024;
    } else {
        char list[512] = "";
        for (int i = 0; preset_names[i]; i++) {
            strcat(list, i ? ", " : "");
            strcat(list, preset_names[i]);
        }
        return lmc_err(LMC_EINVAL, "--model: unknown preset '%s' (known: %s; or a config.json path)", name, list);
    }
    return lmc_config_finish(c);
}

int lmc_config_head_dim(const lmc_model_config *c) { return c->n_head > 0 ? c->dim / c->n_head : 0; }

int lmc_config_tp_kv_heads(const lmc_model_config *c, int tp)
{
    return c->n_kv_head >= tp ? c->n_kv_head / tp : 1;
}

int lmc_config_tp_kv_first(const lmc_model_config *c, int tp, int r)
{
    return c->n_kv_head >= tp ? r * (c->n_kv_head / tp) : r / (tp / c->n_kv_head);
}

lmc_status lmc_config_check_tp(const lmc_model_config *c, int tp)
{
    if (c->n_expert > 0 && tp > 1)
        return lmc_err(LMC_EUNSUPPORTED, "--tp %d: tensor parallelism of mixture-of-experts models (%d experts) is "
                       "not yet supported", tp, c->n_expert);
    int kv_ok = c->n_kv_head % tp == 0 || tp % c->n_kv_head == 0;
    if (c->n_head % tp == 0 && c->ffn_dim % tp == 0 && kv_ok)
        return LMC_OK;
    return lmc_err(LMC_EINVAL, "--tp %d must divide the attention heads (%d) and the MLP width (%d), and divide the "
                   "key/value heads (%d) or be a multiple of them (each kv head then replicated on tp / kv ranks): "
                   "each rank of a tensor-parallel group holds 1/%d of the heads and the MLP", tp, c->n_head,
                   c->ffn_dim, c->n_kv_head, tp);
}

static lmc_status bad(const char *field, long long v, const char *why)
{
    return lmc_err(LMC_EINVAL, "model config: %s = %lld %s", field, v, why);
}

/* The mixture-of-experts fields (named as config.json names them). */
static lmc_status check_moe(const lmc_model_config *c)
{
    if (c->n_expert == 0) {
        if (c->top_k || c->n_shared || c->first_dense || c->bias_step != 0)
            return lmc_err(LMC_EINVAL, "model config: num_experts_per_tok = %d, n_shared_experts = %d, "
                           "first_k_dense_replace = %d and moe_bias_step = %g need num_local_experts > 0 (a "
                           "mixture of experts)", c->top_k, c->n_shared, c->first_dense, c->bias_step);
        return LMC_OK;
    }
    if (strcmp(c->family, "llama") || c->mlp != LMC_MLP_SWIGLU)
        return lmc_err(LMC_EINVAL, "model config: num_local_experts = %d: experts need a Llama-family model (SwiGLU), "
                       "not %s", c->n_expert, c->family);
    if (c->n_expert < 1 || c->n_expert > MAX_EXPERTS)
        return bad("num_local_experts", c->n_expert, "must be in [1, 512]");
    if (c->top_k < 1 || c->top_k > c->n_expert)
        return lmc_err(LMC_EINVAL, "model config: num_experts_per_tok = %d must be in [1, num_local_experts = %d] "
                       "(each token goes to that many of the experts)", c->top_k, c->n_expert);
    if (c->moe_ffn < 1 || c->moe_ffn > MAX_FFN)
        return bad("moe_intermediate_size", c->moe_ffn, "(each expert's width) must be in [1, 1048576]");
    if (c->n_shared < 0 || c->n_shared > MAX_SHARED || (long long)c->n_shared * c->moe_ffn > MAX_FFN)
        return bad("n_shared_experts", c->n_shared, "must be in [0, 64] and its width at most 1048576");
    if (c->first_dense < 0 || c->first_dense >= c->n_layer)
        return lmc_err(LMC_EINVAL, "model config: first_k_dense_replace = %d must be in [0, %d] (fewer than the "
                       "%d layers: at least one layer has experts)", c->first_dense, c->n_layer - 1, c->n_layer);
    if (c->router != LMC_ROUTER_SOFTMAX && c->router != LMC_ROUTER_SIGMOID)
        return bad("scoring_func", (long long)c->router, "is not softmax (0) or sigmoid (1)");
    if (!(c->aux_coef >= 0 && c->aux_coef <= 1e6))
        return lmc_err(LMC_EINVAL, "model config: router_aux_loss_coef = %g must be in [0, 1e6]", c->aux_coef);
    if (!(c->bias_step >= 0 && c->bias_step <= 1))
        return lmc_err(LMC_EINVAL, "model config: moe_bias_step = %g must be in [0, 1] (the balancing bias's step "
                       "per training step; DeepSeek-V3 used 0.001)", c->bias_step);
    return LMC_OK;
}

lmc_status lmc_config_finish(lmc_model_config *c)
{
    if (strcmp(c->family, "gpt2") && strcmp(c->family, "llama"))
        return lmc_err(LMC_EINVAL, "model config: family '%s' is not gpt2 or llama", c->family);
    if (c->n_layer < 1 || c->n_layer > MAX_LAYERS)
        return bad("layers", c->n_layer, "must be in [1, 1024]");
    if (c->n_head < 1 || c->n_head > MAX_HEADS)
        return bad("heads", c->n_head, "must be in [1, 1024]");
    if (c->n_kv_head < 1 || c->n_head % c->n_kv_head)
        return bad("kv_heads", c->n_kv_head, "must divide the number of heads");
    if (c->dim < 1 || c->dim > MAX_DIM || c->dim % c->n_head)
        return bad("dim", c->dim, "must be a positive multiple of the number of heads (at most 65536)");
    if (c->pos == LMC_POS_ROPE && (c->dim / c->n_head) % 2)
        return bad("head_dim", c->dim / c->n_head, "must be even for rotary embeddings");
    if (c->ffn_dim < 1 || c->ffn_dim > MAX_FFN)
        return bad("ffn_dim", c->ffn_dim, "must be in [1, 1048576]");
    if (c->vocab < 2 || c->vocab > MAX_VOCAB)
        return bad("vocab", c->vocab, "must be in [2, 16777216]");
    if (c->max_seq < 1 || c->max_seq > MAX_SEQ)
        return bad("max_seq", c->max_seq, "must be in [1, 1048576]");
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return lmc_err(LMC_EINVAL, "model config: norm_eps = %g must be in (0, 1)", c->norm_eps);
    if (!(c->rope_theta > 1))
        return lmc_err(LMC_EINVAL, "model config: rope_theta = %g must be > 1", c->rope_theta);
    LMC_TRY(check_moe(c));
    c->vocab_padded = (c->vocab + 63) / 64 * 64;
    return LMC_OK;
}

/* Layer l's matmul weights: with experts, the router, the shared experts
 * and `experts` of the routed ones (all of them, or the top_k a token uses). */
static double layer_matmul_params(const lmc_model_config *c, int l, int experts)
{
    double C = c->dim, hs = lmc_config_head_dim(c);
    double qkv = C * (c->n_head + 2.0 * c->n_kv_head) * hs, proj = C * c->n_head * hs;
    double mlp = (c->mlp == LMC_MLP_SWIGLU ? 3.0 : 2.0) * C * c->ffn_dim;
    if (lmc_config_is_moe(c, l))
        mlp = C * c->n_expert + 3.0 * C * c->moe_ffn * ((double)experts + c->n_shared);
    return qkv + proj + mlp;
}

double lmc_config_matmul_params(const lmc_model_config *c)
{
    double p = (double)c->vocab * c->dim;
    for (int l = 0; l < c->n_layer; l++)
        p += layer_matmul_params(c, l, c->top_k);
    return p;
}

double lmc_config_num_params(const lmc_model_config *c)
{
    double C = c->dim, hs = lmc_config_head_dim(c);
    double norms = c->norm == LMC_NORM_LAYER && c->bias ? 2 * C : C;
    double biases = 0;
    if (c->bias)
        biases = (c->n_head + 2.0 * c->n_kv_head) * hs + C +
                 (c->mlp == LMC_MLP_SWIGLU ? 2.0 : 1.0) * c->ffn_dim + C;
    double layers = 0;
    for (int l = 0; l < c->n_layer; l++)
        layers += layer_matmul_params(c, l, c->n_expert) + 2 * norms + biases;
    double emb = (double)c->vocab * C * (c->tied ? 1 : 2);
    double pos = c->pos == LMC_POS_LEARNED ? (double)c->max_seq * C : 0;
    return layers + emb + pos + norms;
}

double lmc_config_train_flops_per_token(const lmc_model_config *c, int T)
{
    return 6.0 * lmc_config_matmul_params(c) + 12.0 * c->n_layer * (double)c->dim * T;
}

/* Mixtral's keys (intermediate_size, written by the caller, is each
 * expert's width), then lmc's extensions. As in Hugging Face, the auxiliary
 * loss is on only with output_router_logits. */
static void moe_to_json(const lmc_model_config *c, lmc_sb *o)
{
    lmc_sb_printf(o, ",\n  \"sliding_window\": null,\n  \"num_local_experts\": %d,\n"
                     "  \"num_experts_per_tok\": %d,\n  \"output_router_logits\": %s,\n"
                     "  \"router_aux_loss_coef\": ",
                  c->n_expert, c->top_k, c->aux_coef > 0 ? "true" : "false");
    lmc_sb_json_num(o, c->aux_coef);
    lmc_sb_printf(o, ",\n  \"scoring_func\": \"%s\",\n  \"n_shared_experts\": %d,\n"
                     "  \"first_k_dense_replace\": %d,\n  \"dense_intermediate_size\": %d",
                  c->router == LMC_ROUTER_SIGMOID ? "sigmoid" : "softmax", c->n_shared, c->first_dense, c->ffn_dim);
    lmc_sb_puts(o, ",\n  \"moe_bias_step\": ");
    lmc_sb_json_num(o, c->bias_step);
}

void lmc_config_to_hf_json(const lmc_model_config *c, lmc_sb *o)
{
    if (!strcmp(c->family, "gpt2")) {
        lmc_sb_printf(o, "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
                         "  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_embd\": %d,\n  \"n_inner\": %d,\n"
                         "  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"vocab_size\": %d,\n"
                         "  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": ",
                      c->n_layer, c->n_head, c->dim, c->ffn_dim, c->max_seq, c->max_seq, c->vocab);
        lmc_sb_json_num(o, c->norm_eps);
        lmc_sb_printf(o, ",\n  \"tie_word_embeddings\": %s\n}\n", c->tied ? "true" : "false");
        return;
    }
    int moe = c->n_expert > 0;
    lmc_sb_printf(o, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n"
                     "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
                     "  \"num_key_value_heads\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
                     "  \"head_dim\": %d,\n  \"max_position_embeddings\": %d,\n  \"vocab_size\": %d,\n"
                     "  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n"
                     "  \"rms_norm_eps\": ",
                  moe ? "MixtralForCausalLM" : "LlamaForCausalLM", moe ? "mixtral" : "llama", c->n_layer, c->n_head,
                  c->n_kv_head, c->dim, moe ? c->moe_ffn : c->ffn_dim, lmc_config_head_dim(c), c->max_seq, c->vocab);
    lmc_sb_json_num(o, c->norm_eps);
    if (moe)
        moe_to_json(c, o);
    lmc_sb_puts(o, ",\n  \"rope_theta\": ");
    lmc_sb_json_num(o, c->rope_theta);
    lmc_sb_printf(o, ",\n  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"float32\"\n}\n",
                  c->tied ? "true" : "false");
}

/* A size field in [0, hi] (0 and other values lmc_config_finish refuses
 * are left to it, which names the rule they break). */
static lmc_status get_int(const lmc_json *j, const char *key, const char *what, int hi, int *out)
{
    long long v = *out;
    LMC_TRY(lmc_json_get_int(j, key, what, &v));
    if (v < 0 || v > hi)
        return lmc_err(LMC_EFORMAT, "%s: field '%s' = %lld is out of range [0, %d]", what, key, v, hi);
    *out = (int)v;
    return LMC_OK;
}

/* A value that a float holds: beyond FLT_MAX it would become inf, pass a
 * "> 1" check and be saved as null, which no reader takes back. */
static lmc_status get_float(const lmc_json *j, const char *key, const char *what, float *out)
{
    double v = *out;
    LMC_TRY(lmc_json_get_num(j, key, what, &v));
    if (!(fabs(v) <= FLT_MAX))
        return lmc_err(LMC_EFORMAT, "%s: field '%s' = %g is out of range for a 32-bit float (|x| <= %g)", what,
                       key, v, FLT_MAX);
    *out = (float)v;
    return LMC_OK;
}

/* A field a mixture of experts cannot do without. */
static lmc_status need(const lmc_json *j, const char *key, const char *what, const char *means)
{
    lmc_json *v = lmc_json_get(j, key);
    if (!v || v->type == LMC_JSON_NULL)
        return lmc_err(LMC_EFORMAT, "%s: model_type mixtral needs field '%s' (%s)", what, key, means);
    return LMC_OK;
}

/* Mixtral's fields and lmc's extensions (lmc_config_to_hf_json); the
 * llama fields are read, intermediate_size into ffn_dim: each expert's
 * width, and the dense layers' unless dense_intermediate_size says. */
static lmc_status moe_from_json(const lmc_json *j, const char *what, lmc_model_config *c)
{
    LMC_TRY(need(j, "num_local_experts", what, "the experts per layer"));
    LMC_TRY(need(j, "num_experts_per_tok", what, "the experts each token goes to"));
    LMC_TRY(need(j, "intermediate_size", what, "each expert's width"));
    LMC_TRY(get_int(j, "num_local_experts", what, MAX_EXPERTS, &c->n_expert));
    LMC_TRY(get_int(j, "num_experts_per_tok", what, MAX_EXPERTS, &c->top_k));
    if (c->n_expert < 1)
        return lmc_err(LMC_EFORMAT, "%s: model_type mixtral: num_local_experts = %d must be in [1, %d]", what,
                       c->n_expert, MAX_EXPERTS);
    LMC_TRY(get_int(j, "n_shared_experts", what, MAX_SHARED, &c->n_shared));
    LMC_TRY(get_int(j, "first_k_dense_replace", what, MAX_LAYERS, &c->first_dense));
    c->moe_ffn = c->ffn_dim;
    LMC_TRY(get_int(j, "dense_intermediate_size", what, MAX_FFN, &c->ffn_dim));
    float coef = 0.001f, jitter = 0; /* Hugging Face's defaults */
    int on = 0;
    LMC_TRY(get_float(j, "router_aux_loss_coef", what, &coef));
    LMC_TRY(lmc_json_get_bool(j, "output_router_logits", what, &on));
    c->aux_coef = on ? coef : 0; /* Hugging Face adds the loss only with output_router_logits */
    LMC_TRY(get_float(j, "moe_bias_step", what, &c->bias_step));
    LMC_TRY(get_float(j, "router_jitter_noise", what, &jitter));
    if (jitter != 0)
        return lmc_err(LMC_EUNSUPPORTED, "%s: router_jitter_noise = %g is not supported (0)", what, jitter);
    const char *fn = NULL;
    LMC_TRY(lmc_json_get_str(j, "scoring_func", what, &fn));
    if (fn && strcmp(fn, "softmax") && strcmp(fn, "sigmoid"))
        return lmc_err(LMC_EFORMAT, "%s: field 'scoring_func' = '%s' is not softmax or sigmoid", what, fn);
    c->router = fn && !strcmp(fn, "sigmoid") ? LMC_ROUTER_SIGMOID : LMC_ROUTER_SOFTMAX;
    lmc_json *sw = lmc_json_get(j, "sliding_window");
    if (sw && sw->type != LMC_JSON_NULL)
        return lmc_err(LMC_EUNSUPPORTED, "%s: sliding_window is not supported (null)", what);
    return LMC_OK;
}

lmc_status lmc_config_from_hf_json(const lmc_json *j, const char *what, lmc_model_config *c)
{
    if (!j || j->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: expected a JSON object", what);
    const char *type = NULL;
    LMC_TRY(lmc_json_get_str(j, "model_type", what, &type));
    if (!type)
        return lmc_err(LMC_EFORMAT, "%s: missing field 'model_type' (gpt2, llama or mixtral)", what);
    int tied = -1;
    if (!strcmp(type, "gpt2")) {
        gpt2(c, 0, 0, 0);
        c->vocab = 0;
        LMC_TRY(get_int(j, "n_layer", what, MAX_LAYERS, &c->n_layer));
        LMC_TRY(get_int(j, "n_head", what, MAX_HEADS, &c->n_head));
        LMC_TRY(get_int(j, "n_embd", what, MAX_DIM, &c->dim));
        LMC_TRY(get_int(j, "n_positions", what, MAX_SEQ, &c->max_seq));
        LMC_TRY(get_int(j, "vocab_size", what, MAX_VOCAB, &c->vocab));
        LMC_TRY(get_float(j, "layer_norm_epsilon", what, &c->norm_eps));
        c->n_kv_head = c->n_head;
        c->ffn_dim = 4 * c->dim;
        lmc_json *inner = lmc_json_get(j, "n_inner");
        if (inner && inner->type != LMC_JSON_NULL)
            LMC_TRY(get_int(j, "n_inner", what, MAX_FFN, &c->ffn_dim));
        const char *act = NULL;
        LMC_TRY(lmc_json_get_str(j, "activation_function", what, &act));
        if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
            return lmc_err(LMC_EUNSUPPORTED, "%s: activation_function '%s' is not supported (gelu_new)", what, act);
    } else if (!strcmp(type, "llama") || !strcmp(type, "mixtral")) {
        llama(c, 0, 0, 0, 0, 0, 0);
        c->vocab = 0;
        c->n_kv_head = -1;
        LMC_TRY(get_int(j, "num_hidden_layers", what, MAX_LAYERS, &c->n_layer));
        LMC_TRY(get_int(j, "num_attention_heads", what, MAX_HEADS, &c->n_head));
        c->n_kv_head = c->n_head;
        LMC_TRY(get_int(j, "num_key_value_heads", what, MAX_HEADS, &c->n_kv_head));
        LMC_TRY(get_int(j, "hidden_size", what, MAX_DIM, &c->dim));
        LMC_TRY(get_int(j, "intermediate_size", what, MAX_FFN, &c->ffn_dim));
        LMC_TRY(get_int(j, "max_position_embeddings", what, MAX_SEQ, &c->max_seq));
        LMC_TRY(get_int(j, "vocab_size", what, MAX_VOCAB, &c->vocab));
        LMC_TRY(get_float(j, "rms_norm_eps", what, &c->norm_eps));
        LMC_TRY(get_float(j, "rope_theta", what, &c->rope_theta));
        int hd = c->n_head ? c->dim / c->n_head : 0;
        LMC_TRY(get_int(j, "head_dim", what, MAX_DIM, &hd));
        if (c->n_head && hd != c->dim / c->n_head)
            return lmc_err(LMC_EUNSUPPORTED, "%s: head_dim %d != hidden_size / num_attention_heads", what, hd);
        int ab = 0, mb = 0;
        LMC_TRY(lmc_json_get_bool(j, "attention_bias", what, &ab));
        LMC_TRY(lmc_json_get_bool(j, "mlp_bias", what, &mb));
        if (ab || mb)
            return lmc_err(LMC_EUNSUPPORTED, "%s: attention_bias/mlp_bias are not supported", what);
        const char *act = NULL;
        LMC_TRY(lmc_json_get_str(j, "hidden_act", what, &act));
        if (act && strcmp(act, "silu"))
            return lmc_err(LMC_EUNSUPPORTED, "%s: hidden_act '%s' is not supported (silu)", what, act);
        lmc_json *rs = lmc_json_get(j, "rope_scaling");
        if (rs && rs->type != LMC_JSON_NULL)
            return lmc_err(LMC_EUNSUPPORTED, "%s: rope_scaling is not supported", what);
        if (!strcmp(type, "mixtral"))
            LMC_TRY(moe_from_json(j, what, c));
    } else {
        return lmc_err(LMC_EUNSUPPORTED, "%s: model_type '%s' is not supported (gpt2, llama or mixtral)", what, type);
    }
    LMC_TRY(lmc_json_get_bool(j, "tie_word_embeddings", what, &tied));
    if (tied >= 0)
        c->tied = tied;
    lmc_status s = lmc_config_finish(c);
    return s ? lmc_err_wrap(s, "%s", what) : LMC_OK;
}

lmc_status lmc_config_from_hf_text(const char *text, size_t n, const char *what, lmc_model_config *c)
{
    lmc_json *j;
    LMC_TRY(lmc_json_parse(text, n, what, &j));
    lmc_status s = lmc_config_from_hf_json(j, what, c);
    lmc_json_free(j);
    return s;
}

lmc_status lmc_config_load(const char *preset_or_path, lmc_model_config *c)
{
    if (!strchr(preset_or_path, '/') && !strstr(preset_or_path, ".json"))
        return lmc_config_preset(preset_or_path, c);
    char *text;
    size_t n;
    char path[4096];
    snprintf(path, sizeof path, "%s%s", preset_or_path, lmc_is_dir(preset_or_path) ? "/config.json" : "");
    LMC_TRY(lmc_read_file(path, &text, &n));
    lmc_status s = lmc_config_from_hf_text(text, n, path, c);
    free(text);
    return s;
}

void lmc_config_describe(const lmc_model_config *c, char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s: %d layers, %d heads (%d kv), dim %d, ffn %d, vocab %d, ctx %d, %.1fM params",
                     c->family, c->n_layer, c->n_head, c->n_kv_head, c->dim, c->ffn_dim, c->vocab, c->max_seq,
                     lmc_config_num_params(c) / 1e6);
    if (c->n_expert > 0 && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, "; %d experts of width %d, top %d (%s)%s, %.1fM active", c->n_expert,
                 c->moe_ffn, c->top_k, c->router == LMC_ROUTER_SIGMOID ? "sigmoid" : "softmax",
                 c->n_shared ? " + shared" : "", lmc_config_matmul_params(c) / 1e6);
}
