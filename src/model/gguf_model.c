/* gguf_model.c: lmc's GPT-2 and Llama models under llama.cpp's tensor
 * names (token_embd, blk.N.attn_qkv, ...), and loading a model from a
 * GGUF file: the config from the architecture's metadata, every tensor
 * checked for presence, shape and type before the buffer is allocated,
 * then decoded to fp32 with Llama's q/k rows put back in HF's order. */
#include "model/gguf_internal.h"
#include "model/weights_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------- names ---------- */

static const struct {
    const char *hf, *gguf;
} global_names[] = {
    {"transformer.wte.weight", "token_embd.weight"},   {"model.embed_tokens.weight", "token_embd.weight"},
    {"transformer.wpe.weight", "position_embd.weight"}, {"transformer.ln_f.weight", "output_norm.weight"},
    {"transformer.ln_f.bias", "output_norm.bias"},      {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
}, layer_names[] = {
    {"ln_1.", "attn_norm."},           {"attn.c_attn.", "attn_qkv."},         {"attn.c_proj.", "attn_output."},
    {"ln_2.", "ffn_norm."},            {"mlp.c_fc.", "ffn_up."},              {"mlp.c_proj.", "ffn_down."},
    {"input_layernorm.", "attn_norm."}, {"self_attn.q_proj.", "attn_q."},      {"self_attn.k_proj.", "attn_k."},
    {"self_attn.v_proj.", "attn_v."},  {"self_attn.o_proj.", "attn_output."}, {"post_attention_layernorm.", "ffn_norm."},
    {"mlp.gate_proj.", "ffn_gate."},   {"mlp.up_proj.", "ffn_up."},           {"mlp.down_proj.", "ffn_down."},
};

/* HF name -> llama.cpp name; 0 when the name is not one of ours. */
static int gguf_name(const char *hf, char *out, size_t n)
{
    for (size_t i = 0; i < sizeof global_names / sizeof *global_names; i++)
        if (!strcmp(hf, global_names[i].hf))
            return snprintf(out, n, "%s", global_names[i].gguf) > 0;
    int layer = -1, used = 0;
    if (sscanf(hf, "transformer.h.%d.%n", &layer, &used) < 1 || !used)
        used = 0, sscanf(hf, "model.layers.%d.%n", &layer, &used);
    if (!used)
        return 0;
    const char *rest = hf + used;
    for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++) {
        size_t k = strlen(layer_names[i].hf);
        if (!strncmp(rest, layer_names[i].hf, k))
            return snprintf(out, n, "blk.%d.%s%s", layer, layer_names[i].gguf, rest + k) > 0;
    }
    return 0;
}

static void from_hf(const lmc_model_config *cfg, const lmc_wpiece *w, lmc_gguf_piece *p)
{
    memset(p, 0, sizeof *p);
    gguf_name(w->p.name, p->name, sizeof p->name);
    p->rows = w->p.rows;
    p->cols = w->p.cols;
    p->at = w->at;
    p->n3 = 1;
    p->ndim = p->cols > 1 ? 2 : 1;
    if (strstr(w->p.name, "q_proj.weight"))
        p->heads = cfg->n_head;
    else if (strstr(w->p.name, "k_proj.weight"))
        p->heads = cfg->n_kv_head;
}

/* A mixture-of-experts layer's MLP as llama.cpp's llama architecture holds
 * it (its Mixtral converter): the router ffn_gate_inp (E, C) and each
 * projection of every expert stacked into one 3-D tensor, ffn_gate_exps and
 * ffn_up_exps ne = [C, F, E] (expert e's gate and up rows of our [gate; up]
 * block), ffn_down_exps ne = [F, C, E]. */
static int expert_pieces(const lmc_model_config *c, const lmc_layout *l, int layer, lmc_gguf_piece *out)
{
    size_t C = (size_t)c->dim, F = (size_t)c->moe_ffn, E = (size_t)c->n_expert;
    size_t router = lmc_layout_slot(l, layer, LMC_T_ROUTER_W)->offset;
    size_t fc = lmc_layout_slot(l, layer, LMC_T_EXP_FC_W)->offset, proj = lmc_layout_slot(l, layer, LMC_T_EXP_PROJ_W)->offset;
    const struct {
        const char *name;
        size_t rows, cols, at, n3, stride3;
    } t[] = {{"ffn_gate_inp", E, C, router, 1, 0}, {"ffn_gate_exps", F, C, fc, E, 2 * F * C},
             {"ffn_up_exps", F, C, fc + F * C, E, 2 * F * C}, {"ffn_down_exps", C, F, proj, E, C * F}};
    for (int i = 0; i < 4; i++) {
        lmc_gguf_piece *p = &out[i];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "blk.%d.%s.weight", layer, t[i].name);
        p->rows = t[i].rows, p->cols = t[i].cols, p->at = t[i].at;
        p->n3 = t[i].n3, p->stride3 = t[i].stride3;
        p->ndim = i ? 3 : 2;
    }
    return 4;
}

int lmc_gguf_unit_pieces(const lmc_model_config *cfg, const lmc_layout *l, int u, lmc_gguf_piece *out)
{
    lmc_wpiece w[LMC_GGUF_UNIT_MAX_PIECES];
    int layer = u - 1, n = 0;
    if (u < 1 || u > l->n_layer || !lmc_config_is_moe(cfg, layer)) {
        n = lmc_weights_unit_pieces(cfg, l, u, w);
        for (int i = 0; i < n; i++)
            from_hf(cfg, &w[i], &out[i]);
        return n;
    }
    static const int attn[] = {LMC_T_LN1_W, LMC_T_QKV_W, LMC_T_ATTN_W, LMC_T_LN2_W}; /* no biases in Llama */
    for (size_t i = 0; i < sizeof attn / sizeof *attn; i++) {
        size_t at = lmc_layout_slot(l, layer, attn[i])->offset;
        for (int k = 0; lmc_hf_piece_at(cfg, layer, attn[i], k, &w[n].p); k++, n++) {
            w[n].at = at + w[n].p.row0 * w[n].p.cols;
            from_hf(cfg, &w[n], &out[n]);
        }
    }
    return n + expert_pieces(cfg, l, layer, out + n);
}

size_t lmc_gguf_file_row(const lmc_gguf_piece *p, size_t r)
{
    if (p->heads <= 0)
        return r;
    size_t hs = p->rows / (size_t)p->heads, half = hs / 2, h = r / hs, k = r % hs;
    return h * hs + 2 * (k % half) + k / half; /* k = j * half + i -> 2i + j */
}

lmc_status lmc_gguf_check_config(const lmc_model_config *c)
{
    int gpt = !strcmp(c->family, "gpt2");
    const char *arch = gpt ? "gpt2" : "llama";
    const char *bad = NULL;
    if (gpt && (c->norm != LMC_NORM_LAYER || c->pos != LMC_POS_LEARNED || c->mlp != LMC_MLP_GELU || !c->bias))
        bad = "GPT-2 with layernorm, learned positions, GELU and biases";
    else if (gpt && c->n_kv_head != c->n_head)
        bad = "as many key/value heads as heads";
    else if (!gpt && (c->norm != LMC_NORM_RMS || c->pos != LMC_POS_ROPE || c->mlp != LMC_MLP_SWIGLU || c->bias))
        bad = "Llama with RMSNorm, rotary positions, SwiGLU and no biases";
    if (c->n_expert > 0 && c->router != LMC_ROUTER_SOFTMAX)
        bad = "a mixture of experts to route by softmax, top k renormalised (Mixtral's router), not this model's "
              "sigmoid scores (scoring_func sigmoid)";
    else if (c->n_expert > 0 && c->n_shared > 0)
        bad = "a mixture of experts without shared experts (n_shared_experts)";
    else if (c->n_expert > 0 && c->first_dense > 0)
        bad = "experts in every layer (this model's first_k_dense_replace keeps the first layers dense)";
    if (bad)
        return lmc_err(LMC_EUNSUPPORTED, "this %s model does not fit llama.cpp's '%s' architecture, which needs %s",
                       c->family, arch, bad);
    return LMC_OK;
}

/* ---------- the config from metadata ---------- */

typedef struct {
    const lmc_gguf *g;
    char arch[8];
} gsrc;

static lmc_status arch_int(const gsrc *s, const char *key, int required, long long *v)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", s->arch, key);
    return lmc_gguf_get_int(s->g, k, required, 1, INT_MAX, v);
}

static lmc_status arch_float(const gsrc *s, const char *key, int required, double *v)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", s->arch, key);
    LMC_TRY(lmc_gguf_get_float(s->g, k, required, v));
    if (!isfinite(*v) || *v > 3e38)
        return lmc_err(LMC_EFORMAT, "%s: key '%s' = %g is not a finite float", s->g->what, k, *v);
    return LMC_OK;
}

static lmc_status read_arch(gsrc *s)
{
    lmc_gguf_str a = {0};
    LMC_TRY(lmc_gguf_get_str(s->g, "general.architecture", 1, &a));
    if ((a.n == 4 && !memcmp(a.s, "gpt2", 4)) || (a.n == 5 && !memcmp(a.s, "llama", 5))) {
        memcpy(s->arch, a.s, a.n);
        s->arch[a.n] = 0;
        return LMC_OK;
    }
    return lmc_err(LMC_EUNSUPPORTED, "%s: key 'general.architecture' is '%.*s'; lmc reads 'gpt2' and 'llama'",
                   s->g->what, (int)(a.n < 64 ? a.n : 64), a.s);
}

/* Keys llama.cpp's llama architecture may carry that change the model in
 * ways lmc does not implement. */
static lmc_status refuse_extras(const gsrc *s, int head_dim)
{
    long long v = 0;
    LMC_TRY(arch_int(s, "rope.dimension_count", 0, &v));
    if (v && v != head_dim)
        return lmc_err(LMC_EUNSUPPORTED, "%s: key '%s.rope.dimension_count' = %lld: lmc rotates whole heads (%d)",
                       s->g->what, s->arch, v, head_dim);
    v = 0;
    LMC_TRY(arch_int(s, "attention.key_length", 0, &v));
    if (v && v != head_dim)
        return lmc_err(LMC_EUNSUPPORTED, "%s: key '%s.attention.key_length' = %lld: lmc needs embedding / heads (%d)",
                       s->g->what, s->arch, v, head_dim);
    char k[128];
    static const char *const moe_extras[] = {"expert_shared_count", "expert_shared_feed_forward_length",
                                             "expert_weights_scale", "expert_gating_func", "leading_dense_block_count"};
    for (size_t i = 0; i < sizeof moe_extras / sizeof *moe_extras; i++) {
        snprintf(k, sizeof k, "%s.%s", s->arch, moe_extras[i]);
        if (lmc_gguf_find(s->g, k))
            return lmc_err(LMC_EUNSUPPORTED, "%s: key '%s': lmc reads Mixtral's mixture of experts (softmax router, "
                           "top k renormalised, experts in every layer, none shared)", s->g->what, k);
    }
    lmc_gguf_str st = {"none", 4};
    snprintf(k, sizeof k, "%s.rope.scaling.type", s->arch);
    LMC_TRY(lmc_gguf_get_str(s->g, k, 0, &st));
    if (!(st.n == 4 && !memcmp(st.s, "none", 4)))
        return lmc_err(LMC_EUNSUPPORTED, "%s: key '%s' = '%.*s': lmc does not scale rotary embeddings", s->g->what, k,
                       (int)(st.n < 32 ? st.n : 32), st.s);
    return LMC_OK;
}

/* Mixtral in llama.cpp's llama architecture: expert_count experts of
 * width feed_forward_length, expert_used_count per token, softmax router,
 * no auxiliary loss (Hugging Face's default without output_router_logits). */
static lmc_status read_experts(const gsrc *s, lmc_model_config *c)
{
    char k[128];
    long long E = 0, K = 0;
    snprintf(k, sizeof k, "%s.expert_count", s->arch);
    LMC_TRY(lmc_gguf_get_int(s->g, k, 0, 0, INT_MAX, &E));
    if (E == 0)
        return LMC_OK;
    if (strcmp(s->arch, "llama"))
        return lmc_err(LMC_EUNSUPPORTED, "%s: key '%s' = %lld: lmc reads experts in the llama architecture only",
                       s->g->what, k, E);
    LMC_TRY(arch_int(s, "expert_used_count", 1, &K));
    c->n_expert = (int)E, c->top_k = (int)K, c->moe_ffn = c->ffn_dim;
    c->router = LMC_ROUTER_SOFTMAX, c->aux_coef = 0;
    return LMC_OK;
}

static lmc_status read_config(gsrc *s, lmc_model_config *c)
{
    LMC_TRY(read_arch(s));
    int gpt = !strcmp(s->arch, "gpt2");
    LMC_TRY(lmc_config_preset(gpt ? "d12" : "llama-15m", c));
    long long ctx = 0, dim = 0, layers = 0, heads = 0, kv = 0, ffn = 0;
    double eps = 0, theta = 10000.0;
    LMC_TRY(arch_int(s, "context_length", 1, &ctx));
    LMC_TRY(arch_int(s, "embedding_length", 1, &dim));
    LMC_TRY(arch_int(s, "block_count", 1, &layers));
    LMC_TRY(arch_int(s, "attention.head_count", 1, &heads));
    kv = heads;
    LMC_TRY(arch_int(s, "attention.head_count_kv", 0, &kv));
    ffn = gpt && dim <= INT_MAX / 4 ? 4 * dim : 0;
    LMC_TRY(arch_int(s, "feed_forward_length", !gpt, &ffn));
    LMC_TRY(arch_float(s, gpt ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon", 1, &eps));
    if (!gpt)
        LMC_TRY(arch_float(s, "rope.freq_base", 0, &theta));
    c->max_seq = (int)ctx, c->dim = (int)dim, c->n_layer = (int)layers, c->n_head = (int)heads;
    c->n_kv_head = (int)kv, c->ffn_dim = (int)ffn, c->norm_eps = (float)eps, c->rope_theta = (float)theta;
    LMC_TRY(read_experts(s, c));
    const lmc_gguf_tensor *emb = lmc_gguf_tensor_find(s->g, "token_embd.weight");
    if (!emb || emb->ndim != 2 || emb->ne[0] != (uint64_t)dim || emb->ne[1] < 2 || emb->ne[1] > INT_MAX)
        return lmc_err(LMC_EFORMAT, "%s: tensor 'token_embd.weight' is %s; it must be 2-D with ne[0] = %s.embedding_"
                       "length (%lld) and ne[1] the vocabulary size", s->g->what, emb ? "of another shape" : "missing",
                       s->arch, dim);
    c->vocab = (int)emb->ne[1];
    c->tied = !lmc_gguf_tensor_find(s->g, "output.weight");
    lmc_status st = lmc_config_finish(c);
    if (st != LMC_OK)
        return lmc_err_wrap(st, "%s: the %s metadata", s->g->what, s->arch);
    LMC_TRY(refuse_extras(s, lmc_config_head_dim(c)));
    if (gpt && c->n_kv_head != c->n_head)
        return lmc_err(LMC_EUNSUPPORTED, "%s: key 'gpt2.attention.head_count_kv' = %d differs from head_count = %d",
                       s->g->what, c->n_kv_head, c->n_head);
    return LMC_OK;
}

/* ---------- tensors ---------- */

static lmc_status check_piece(const gsrc *s, const lmc_gguf_piece *p, const lmc_gguf_tensor **out)
{
    const lmc_gguf_tensor *t = lmc_gguf_tensor_find(s->g, p->name);
    if (!t)
        return lmc_err(LMC_EFORMAT, "%s: missing tensor '%s'", s->g->what, p->name);
    uint64_t want0 = p->ndim >= 2 ? p->cols : p->rows, want1 = p->ndim >= 2 ? p->rows : 1, want2 = p->n3;
    if (t->ne[0] != want0 || t->ne[1] != want1 || t->ne[2] != want2 || t->ne[3] != 1)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s' has ne = [%llu, %llu, %llu, %llu], the model needs [%llu, %llu, "
                       "%llu, 1]", s->g->what, t->name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                       (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (unsigned long long)want0,
                       (unsigned long long)want1, (unsigned long long)want2);
    *out = t;
    return LMC_OK;
}

/* Every tensor the model needs, with its shape; and nothing else in the file. */
static lmc_status check_tensors(const gsrc *s, const lmc_model_config *cfg, const lmc_layout *l)
{
    char *used = calloc((size_t)s->g->n_tensors + 1, 1);
    if (!used)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", s->g->what);
    lmc_status st = LMC_OK;
    for (int u = 0; u < lmc_layout_num_units(l) && st == LMC_OK; u++) {
        lmc_gguf_piece p[LMC_GGUF_UNIT_MAX_PIECES];
        int n = lmc_gguf_unit_pieces(cfg, l, u, p);
        for (int i = 0; i < n && st == LMC_OK; i++) {
            const lmc_gguf_tensor *t = NULL;
            st = check_piece(s, &p[i], &t);
            if (st == LMC_OK)
                used[t - s->g->t] = 1;
        }
    }
    for (int i = 0; i < s->g->n_tensors && st == LMC_OK; i++)
        if (!used[i])
            st = lmc_err(LMC_EFORMAT, "%s: unexpected tensor '%s' (not part of a %s model with this metadata)",
                         s->g->what, s->g->t[i].name, s->arch);
    free(used);
    return st;
}

typedef struct {
    float *p;
    size_t cap;
} rowbuf;

/* The elements of one tensor that the runs of m list, into dst (each run's
 * at), a row at a time (rows are whole q8_0 blocks); rows no run meets are
 * not decoded. */
static lmc_status read_piece(const gsrc *s, const lmc_gguf_piece *p, const lmc_part_map *m, float *dst, rowbuf *row)
{
    const lmc_gguf_tensor *t = NULL;
    LMC_TRY(check_piece(s, p, &t));
    size_t len = p->ndim >= 2 ? p->cols : p->rows, nrows = p->ndim >= 2 ? p->rows : 1;
    if (len > row->cap) {
        free(row->p);
        row->cap = 0;
        if (!(row->p = malloc(len * sizeof(float))))
            return lmc_err(LMC_ENOMEM, "%s: out of memory", s->g->what);
        row->cap = len;
    }
    for (size_t i = 0; i < nrows * p->n3; i++) { /* matrix x = i / nrows, its row r */
        size_t x = i / nrows, r = i % nrows;
        size_t a = p->at + x * p->stride3 + r * len, b = a + len; /* this row's buffer range */
        size_t k = lmc_part_map_find(m, a);
        if (k >= m->n || m->r[k].whole >= b)
            continue;
        size_t fr = x * nrows + lmc_gguf_file_row(p, r);
        lmc_ggml_decode((lmc_ggml_type)t->type, t->data, fr * len, len, row->p);
        for (size_t j = 0; j < len; j++)
            if (!isfinite(row->p[j]))
                return lmc_err(LMC_EFORMAT, "%s: tensor '%s' holds a non-finite value in row %zu", s->g->what, t->name,
                               fr);
        for (; k < m->n && m->r[k].whole < b; k++) {
            const lmc_part_run *run = &m->r[k];
            size_t lo = run->whole > a ? run->whole : a, hi = run->whole + run->n < b ? run->whole + run->n : b;
            memcpy(dst + run->at + (lo - run->whole), row->p + (lo - a), (hi - lo) * sizeof(float));
        }
    }
    return LMC_OK;
}

/* The runs of m into dst (m->floats; what no tensor covers, padding, stays 0). */
static lmc_status read_map(const gsrc *s, const lmc_model_config *cfg, const lmc_layout *l, const lmc_part_map *m,
                           float *dst)
{
    if (m->n && m->r[m->n - 1].whole + m->r[m->n - 1].n > l->total)
        return lmc_err(LMC_ERANGE, "%s: elements up to %zu are asked for, past the model's %zu parameters", s->g->what,
                       m->r[m->n - 1].whole + m->r[m->n - 1].n, l->total);
    if (m->floats)
        memset(dst, 0, m->floats * sizeof(float));
    if (!m->n)
        return LMC_OK;
    rowbuf row = {0};
    lmc_status st = LMC_OK;
    for (int u = 0; u < lmc_layout_num_units(l) && st == LMC_OK; u++) {
        size_t ub, ue;
        lmc_layout_unit(l, u, &ub, &ue);
        if (!lmc_part_map_meets(m, ub, ue))
            continue;
        lmc_gguf_piece p[LMC_GGUF_UNIT_MAX_PIECES];
        int n = lmc_gguf_unit_pieces(cfg, l, u, p);
        for (int i = 0; i < n && st == LMC_OK; i++)
            st = read_piece(s, &p[i], m, dst, &row);
    }
    free(row.p);
    return st;
}

static lmc_status read_range(const gsrc *s, const lmc_model_config *cfg, const lmc_layout *l, size_t begin,
                             size_t end, float *dst)
{
    if (begin > end || end > l->total)
        return lmc_err(LMC_ERANGE, "%s: elements [%zu, %zu) are not a range of the model's %zu parameters",
                       s->g->what, begin, end, l->total);
    lmc_part_run run;
    lmc_part_map m = lmc_part_map_range(&run, begin, end);
    return read_map(s, cfg, l, &m, dst);
}

/* The config, the layout, and every tensor checked: what each load starts with. */
static lmc_status prepare(gsrc *s, const lmc_gguf *g, lmc_model_config *cfg, lmc_layout *layout)
{
    memset(s, 0, sizeof *s);
    s->g = g;
    LMC_TRY(read_config(s, cfg));
    LMC_TRY(lmc_layout_build(cfg, layout));
    lmc_status st = check_tensors(s, cfg, layout);
    if (st != LMC_OK)
        lmc_layout_free(layout);
    return st;
}

lmc_status lmc_gguf_model_from(const lmc_gguf *g, lmc_model_config *cfg, lmc_layout *layout, float **params)
{
    gsrc s;
    *params = NULL;
    LMC_TRY(prepare(&s, g, cfg, layout));
    float *p = lmc_alloc(layout->total * sizeof(float), "model parameters");
    lmc_status st = p ? read_range(&s, cfg, layout, 0, layout->total, p) : LMC_ENOMEM;
    if (st == LMC_OK)
        *params = p;
    else
        lmc_free(p), lmc_layout_free(layout);
    return st;
}

lmc_status lmc_gguf_load_range(const char *path, lmc_model_config *cfg, lmc_layout *layout, size_t begin,
                               size_t end, float *dst)
{
    if (!dst && end > begin)
        return lmc_err(LMC_EINVAL, "%s: no buffer for elements [%zu, %zu)", path, begin, end);
    lmc_gguf g;
    gsrc s;
    LMC_TRY(lmc_gguf_open(&g, path));
    lmc_status st = prepare(&s, &g, cfg, layout);
    if (st == LMC_OK && (st = read_range(&s, cfg, layout, begin, end, dst)) != LMC_OK)
        lmc_layout_free(layout);
    lmc_gguf_close(&g);
    return st;
}

lmc_status lmc_gguf_model_part_from(const lmc_gguf *g, lmc_model_config *cfg, lmc_layout *layout,
                                    const lmc_part_map *m, float *dst)
{
    gsrc s;
    LMC_TRY(prepare(&s, g, cfg, layout));
    lmc_status st = read_map(&s, cfg, layout, m, dst);
    if (st != LMC_OK)
        lmc_layout_free(layout);
    return st;
}

lmc_status lmc_gguf_load_part(const char *path, lmc_model_config *cfg, lmc_layout *layout, const lmc_part_map *m,
                              float *dst)
{
    lmc_gguf g;
    LMC_TRY(lmc_gguf_open(&g, path));
    lmc_status st = lmc_gguf_model_part_from(&g, cfg, layout, m, dst);
    lmc_gguf_close(&g);
    return st;
}

lmc_status lmc_gguf_load(const char *path, lmc_model_config *cfg, lmc_layout *layout, float **params)
{
    lmc_gguf g;
    *params = NULL;
    LMC_TRY(lmc_gguf_open(&g, path));
    lmc_status st = lmc_gguf_model_from(&g, cfg, layout, params);
    lmc_gguf_close(&g);
    return st;
}

lmc_status lmc_gguf_file_type(const char *path, int *ftype)
{
    lmc_gguf g;
    LMC_TRY(lmc_gguf_open(&g, path));
    long long v = -1;
    lmc_status st = lmc_gguf_get_int(&g, "general.file_type", 0, 0, INT_MAX, &v);
    *ftype = (int)v;
    lmc_gguf_close(&g);
    return st;
}

/* ---------- file types ---------- */

static const struct {
    const char *name;
    int ftype;
} ftypes[] = {{"f32", LMC_GGUF_FTYPE_F32}, {"f16", LMC_GGUF_FTYPE_F16}, {"bf16", LMC_GGUF_FTYPE_BF16},
              {"q8_0", LMC_GGUF_FTYPE_Q8_0}};

lmc_status lmc_gguf_ftype_parse(const char *s, int *ftype)
{
    for (size_t i = 0; i < sizeof ftypes / sizeof *ftypes; i++)
        if (!strcmp(s, ftypes[i].name)) {
            *ftype = ftypes[i].ftype;
            return LMC_OK;
        }
    return lmc_err(LMC_EINVAL, "--type: unknown type '%s' (use f32, f16, bf16 or q8_0)", s);
}

const char *lmc_gguf_ftype_name(int ftype)
{
    for (size_t i = 0; i < sizeof ftypes / sizeof *ftypes; i++)
        if (ftypes[i].ftype == ftype)
            return ftypes[i].name;
    return "other";
}
