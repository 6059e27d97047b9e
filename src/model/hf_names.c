/* hf_names.c: the Hugging Face tensor names and layouts of each internal
 * tensor (GPT2LMHeadModel, LlamaForCausalLM and MixtralForCausalLM). */
#include "lmc/model.h"

#include <stdio.h>
#include <string.h>

static int piece(lmc_hf_piece *p, const char *name, size_t row0, size_t rows, size_t cols, int tr)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->row0 = row0;
    p->rows = rows;
    p->cols = cols;
    p->transpose = tr;
    return 1;
}

static int gpt2_layer(const lmc_model_config *c, int i, int kind, int k, lmc_hf_piece *o)
{
    static const char *const names[] = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                        "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                        "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                                        "mlp.c_proj.bias"};
    size_t C = (size_t)c->dim, F = (size_t)c->ffn_dim;
    size_t rows[] = {C, C, 3 * C, 3 * C, C, C, C, C, F, F, C, C};
    size_t cols[] = {1, 1, C, 1, C, 1, 1, 1, C, 1, F, 1};
    if (k > 0 || kind > LMC_T_PROJ_B)
        return 0;
    char name[112];
    snprintf(name, sizeof name, "transformer.h.%d.%s", i, names[kind]);
    int is_matrix = cols[kind] > 1;
    return piece(o, name, 0, rows[kind], cols[kind], is_matrix);
}

/* A mixture-of-experts layer's MLP tensors (Mixtral's block_sparse_moe;
 * the shared experts are lmc's extension, named as DeepSeek-V3's). */
static int moe_layer(const lmc_model_config *c, const char *pre, int kind, int k, lmc_hf_piece *o)
{
    size_t C = (size_t)c->dim, F = (size_t)c->moe_ffn, S = (size_t)c->n_shared * F, E = (size_t)c->n_expert;
    char name[112];
#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)
    switch (kind) {
    case LMC_T_ROUTER_W:
        return k == 0 && piece(o, NAME("%sblock_sparse_moe.gate.weight", pre), 0, E, C, 0);
    case LMC_T_FC_W: /* shared experts: [gate; up] */
        if (k > 1)
            return 0;
        return piece(o, NAME("%sblock_sparse_moe.shared_experts.%s.weight", pre, k ? "up_proj" : "gate_proj"), k * S,
                     S, C, 0);
    case LMC_T_PROJ_W:
        return k == 0 && piece(o, NAME("%sblock_sparse_moe.shared_experts.down_proj.weight", pre), 0, C, S, 0);
    case LMC_T_EXP_FC_W: /* expert e: rows [2eF, 2eF + F) w1 (gate), [2eF + F, 2(e+1)F) w3 (up) */
        if ((size_t)k >= 2 * E)
            return 0;
        return piece(o, NAME("%sblock_sparse_moe.experts.%d.%s.weight", pre, k / 2, k % 2 ? "w3" : "w1"),
                     (size_t)k * F, F, C, 0);
    case LMC_T_EXP_PROJ_W: /* expert e: rows [eC, (e+1)C) w2 (down) */
        if ((size_t)k >= E)
            return 0;
        return piece(o, NAME("%sblock_sparse_moe.experts.%d.w2.weight", pre, k), (size_t)k * C, C, F, 0);
    }
#undef NAME
    return 0;
}

static int llama_layer(const lmc_model_config *c, int i, int kind, int k, lmc_hf_piece *o)
{
    size_t C = (size_t)c->dim, hs = (size_t)lmc_config_head_dim(c), I = (size_t)c->ffn_dim;
    size_t q = (size_t)c->n_head * hs, kv = (size_t)c->n_kv_head * hs;
    char pre[64], name[112];
    snprintf(pre, sizeof pre, "model.layers.%d.", i);
    int moe = lmc_config_is_moe(c, i);
    if (moe && (kind == LMC_T_FC_W || kind == LMC_T_PROJ_W || kind >= LMC_T_ROUTER_W))
        return moe_layer(c, pre, kind, k, o);
#define NAME(s) (snprintf(name, sizeof name, "%s%s", pre, s), name)
    static const char *const qkv[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                      "self_attn.v_proj.weight"};
    size_t qkv_row0[] = {0, q, q + kv}, qkv_rows[] = {q, kv, kv};
    switch (kind) {
    case LMC_T_LN1_W: return k == 0 && piece(o, NAME("input_layernorm.weight"), 0, C, 1, 0);
    case LMC_T_LN2_W: return k == 0 && piece(o, NAME("post_attention_layernorm.weight"), 0, C, 1, 0);
    case LMC_T_ATTN_W: return k == 0 && piece(o, NAME("self_attn.o_proj.weight"), 0, C, q, 0);
    case LMC_T_PROJ_W: return k == 0 && piece(o, NAME("mlp.down_proj.weight"), 0, C, I, 0);
    case LMC_T_QKV_W: return k < 3 && piece(o, NAME(qkv[k]), qkv_row0[k], qkv_rows[k], C, 0);
    case LMC_T_FC_W: return k < 2 && piece(o, NAME(k ? "mlp.up_proj.weight" : "mlp.gate_proj.weight"), k * I, I, C, 0);
    }
#undef NAME
    return 0;
}

int lmc_hf_piece_at(const lmc_model_config *c, int layer, int kind, int k, lmc_hf_piece *out)
{
    int gpt = !strcmp(c->family, "gpt2");
    size_t C = (size_t)c->dim, V = (size_t)c->vocab;
    if (layer >= 0)
        return gpt ? gpt2_layer(c, layer, kind, k, out) : llama_layer(c, layer, kind, k, out);
    if (k > 0)
        return 0;
    switch (kind) {
    case LMC_T_WTE: return piece(out, gpt ? "transformer.wte.weight" : "model.embed_tokens.weight", 0, V, C, 0);
    case LMC_T_WPE: return piece(out, "transformer.wpe.weight", 0, (size_t)c->max_seq, C, 0);
    case LMC_T_NORMF_W: return piece(out, gpt ? "transformer.ln_f.weight" : "model.norm.weight", 0, C, 1, 0);
    case LMC_T_NORMF_B: return piece(out, "transformer.ln_f.bias", 0, C, 1, 0);
    case LMC_T_HEAD: return c->tied ? 0 : piece(out, "lm_head.weight", 0, V, C, 0);
    }
    return 0;
}

/* DeepSeek-V3's balancing bias of layer l: not a parameter (no gradient),
 * a buffer of the router module, so it sits beside the router's weight as
 * Hugging Face's DeepseekV3TopkRouter keeps it beside its own: there
 * model.layers.N.mlp.gate.{weight,e_score_correction_bias}; lmc's router
 * is Mixtral's model.layers.N.block_sparse_moe.gate.weight, hence
 * model.layers.N.block_sparse_moe.gate.e_score_correction_bias. */
int lmc_hf_moe_bias_name(const lmc_model_config *c, int l, char *buf, size_t n)
{
    if (l < 0 || l >= c->n_layer || !lmc_config_is_moe(c, l) || strcmp(c->family, "llama"))
        return 0;
    snprintf(buf, n, "model.layers.%d.block_sparse_moe.gate.e_score_correction_bias", l);
    return 1;
}

/* 12 dense slots (qkv is 3 pieces, fc 2), or with experts the router, the
 * shared experts' 3 and 3 per expert */
int lmc_hf_unit_max_pieces(const lmc_model_config *c) { return 16 + (c->n_expert > 0 ? 4 + 3 * c->n_expert : 0); }
