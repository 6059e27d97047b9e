/* hf_names.c: the Hugging Face tensor names and layouts of each internal
 * tensor (GPT2LMHeadModel and LlamaForCausalLM). */
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

static int gpt2_layer(const lmc_model_config *c, int i, int kind, lmc_hf_piece *o)
{
    static const char *const names[] = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                        "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                        "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                                        "mlp.c_proj.bias"};
    size_t C = (size_t)c->dim, F = (size_t)c->ffn_dim;
    size_t rows[] = {C, C, 3 * C, 3 * C, C, C, C, C, F, F, C, C};
    size_t cols[] = {1, 1, C, 1, C, 1, 1, 1, C, 1, F, 1};
    char name[112];
    snprintf(name, sizeof name, "transformer.h.%d.%s", i, names[kind]);
    int is_matrix = cols[kind] > 1;
    return piece(o, name, 0, rows[kind], cols[kind], is_matrix);
}

static int llama_layer(const lmc_model_config *c, int i, int kind, lmc_hf_piece *o)
{
    size_t C = (size_t)c->dim, hs = (size_t)lmc_config_head_dim(c), I = (size_t)c->ffn_dim;
    size_t q = (size_t)c->n_head * hs, kv = (size_t)c->n_kv_head * hs;
    char pre[64], name[112];
    snprintf(pre, sizeof pre, "model.layers.%d.", i);
#define NAME(s) (snprintf(name, sizeof name, "%s%s", pre, s), name)
    switch (kind) {
    case LMC_T_LN1_W: return piece(o, NAME("input_layernorm.weight"), 0, C, 1, 0);
    case LMC_T_LN2_W: return piece(o, NAME("post_attention_layernorm.weight"), 0, C, 1, 0);
    case LMC_T_ATTN_W: return piece(o, NAME("self_attn.o_proj.weight"), 0, C, q, 0);
    case LMC_T_PROJ_W: return piece(o, NAME("mlp.down_proj.weight"), 0, C, I, 0);
    case LMC_T_QKV_W:
        piece(&o[0], NAME("self_attn.q_proj.weight"), 0, q, C, 0);
        piece(&o[1], NAME("self_attn.k_proj.weight"), q, kv, C, 0);
        piece(&o[2], NAME("self_attn.v_proj.weight"), q + kv, kv, C, 0);
        return 3;
    case LMC_T_FC_W:
        piece(&o[0], NAME("mlp.gate_proj.weight"), 0, I, C, 0);
        piece(&o[1], NAME("mlp.up_proj.weight"), I, I, C, 0);
        return 2;
    }
#undef NAME
    return 0;
}

int lmc_hf_pieces(const lmc_model_config *c, int layer, int kind, lmc_hf_piece out[3])
{
    int gpt = !strcmp(c->family, "gpt2");
    size_t C = (size_t)c->dim, V = (size_t)c->vocab;
    if (layer >= 0)
        return gpt ? gpt2_layer(c, layer, kind, out) : llama_layer(c, layer, kind, out);
    switch (kind) {
    case LMC_T_WTE: return piece(out, gpt ? "transformer.wte.weight" : "model.embed_tokens.weight", 0, V, C, 0);
    case LMC_T_WPE: return piece(out, "transformer.wpe.weight", 0, (size_t)c->max_seq, C, 0);
    case LMC_T_NORMF_W: return piece(out, gpt ? "transformer.ln_f.weight" : "model.norm.weight", 0, C, 1, 0);
    case LMC_T_NORMF_B: return piece(out, "transformer.ln_f.bias", 0, C, 1, 0);
    case LMC_T_HEAD: return c->tied ? 0 : piece(out, "lm_head.weight", 0, V, C, 0);
    }
    return 0;
}
