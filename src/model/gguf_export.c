/* gguf_export.c: a model and its tokenizer as a GGUF file llama.cpp runs:
 * the metadata of its gpt2 or llama architecture, the byte-level BPE
 * tokenizer (tokenizer.ggml.model "gpt2", GPT-2's pre-tokenizer, no BOS
 * added: lmc_tok_encode's ids), and the tensors under llama.cpp's names,
 * Llama's q/k rows in the rope order llama.cpp's converter gives them.
 * Type choice follows the converter: 1-D tensors and position embeddings
 * stay f32; a q8_0 tensor with rows that are not whole blocks goes f16.
 * A mixture of experts is Mixtral's layout (gguf_model.c's expert_pieces):
 * expert_count, expert_used_count and the experts stacked in 3-D tensors. */
#include "model/gguf_internal.h"

#include <stdlib.h>
#include <string.h>

static void put_arch(lmc_gguf_writer *w, const lmc_model_config *c, const char *arch)
{
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    lmc_gguf_put_u32(w, KEY("context_length"), (uint32_t)c->max_seq);
    lmc_gguf_put_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
    lmc_gguf_put_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
    lmc_gguf_put_u32(w, KEY("feed_forward_length"), (uint32_t)(c->n_expert > 0 ? c->moe_ffn : c->ffn_dim));
    if (c->n_expert > 0) { /* Mixtral: every layer's experts, softmax router (lmc_gguf_check_config) */
        lmc_gguf_put_u32(w, KEY("expert_count"), (uint32_t)c->n_expert);
        lmc_gguf_put_u32(w, KEY("expert_used_count"), (uint32_t)c->top_k);
    }
    lmc_gguf_put_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head);
    lmc_gguf_put_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
    if (!strcmp(arch, "gpt2")) {
        lmc_gguf_put_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps);
    } else {
        lmc_gguf_put_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
        lmc_gguf_put_f32(w, KEY("rope.freq_base"), c->rope_theta);
        lmc_gguf_put_u32(w, KEY("rope.dimension_count"), (uint32_t)lmc_config_head_dim(c));
        lmc_gguf_put_u32(w, KEY("vocab_size"), (uint32_t)c->vocab);
    }
#undef KEY
}

/* The tokenizer as lmc encodes: GPT-2's pre-tokenizer, no BOS or EOS
 * added; <|endoftext|> (else the first special token) is BOS and EOS, as
 * in GPT-2's own config. */
static void put_tokenizer(lmc_gguf_writer *w, const lmc_tokenizer *tok, const lmc_tok_vocab *v)
{
    lmc_gguf_put_str(w, "tokenizer.ggml.model", "gpt2");
    lmc_gguf_put_str(w, "tokenizer.ggml.pre", "gpt-2");
    lmc_gguf_put_str_arr(w, "tokenizer.ggml.tokens", v->tokens, (size_t)v->n);
    lmc_gguf_put_i32_arr(w, "tokenizer.ggml.token_type", v->types, (size_t)v->n);
    lmc_gguf_put_str_arr(w, "tokenizer.ggml.merges", v->merges, (size_t)v->n_merges);
    int eot = lmc_tok_special_id(tok, "<|endoftext|>");
    if (eot < 0 && lmc_tok_n_special(tok) > 0)
        eot = lmc_tok_special_at(tok, 0);
    if (eot >= 0) {
        lmc_gguf_put_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eot);
        lmc_gguf_put_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eot);
    }
    lmc_gguf_put_bool(w, "tokenizer.ggml.add_bos_token", 0);
    lmc_gguf_put_bool(w, "tokenizer.ggml.add_eos_token", 0);
}

static lmc_ggml_type tensor_type(const lmc_gguf_piece *p, int ftype)
{
    if (p->ndim < 2 || !strcmp(p->name, "position_embd.weight") || strstr(p->name, ".ffn_gate_inp."))
        return LMC_GGML_F32; /* the router too, as llama.cpp's converter keeps it */
    switch (ftype) {
    case LMC_GGUF_FTYPE_F16: return LMC_GGML_F16;
    case LMC_GGUF_FTYPE_BF16: return LMC_GGML_BF16;
    case LMC_GGUF_FTYPE_Q8_0: return p->cols % LMC_Q8_0_BLOCK ? LMC_GGML_F16 : LMC_GGML_Q8_0;
    }
    return LMC_GGML_F32;
}

typedef struct {
    lmc_gguf_piece *p;
    int n;
} piece_list;

static lmc_status list_pieces(const lmc_model_config *cfg, const lmc_layout *l, piece_list *pl)
{
    int U = lmc_layout_num_units(l);
    pl->p = calloc((size_t)U * LMC_GGUF_UNIT_MAX_PIECES, sizeof *pl->p);
    if (!pl->p)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int u = 0; u < U; u++)
        pl->n += lmc_gguf_unit_pieces(cfg, l, u, pl->p + pl->n);
    return LMC_OK;
}

/* One tensor: its rows in the file's order (each of its n3 matrices in
 * turn), encoded, written. */
static lmc_status write_piece(lmc_gguf_writer *w, const lmc_gguf_piece *p, const float *params, lmc_ggml_type type,
                              float *rows, uint8_t *bytes)
{
    size_t len = p->ndim >= 2 ? p->cols : p->rows, nrows = p->ndim >= 2 ? p->rows : 1, n = len * nrows * p->n3;
    for (size_t x = 0; x < p->n3; x++)
        for (size_t r = 0; r < nrows; r++)
            memcpy(rows + (x * nrows + lmc_gguf_file_row(p, r)) * len, params + p->at + x * p->stride3 + r * len,
                   len * sizeof(float));
    lmc_ggml_encode(type, rows, n, bytes);
    return lmc_gguf_write_tensor(w, bytes, lmc_ggml_bytes(type, n));
}

static lmc_status write_model(lmc_gguf_writer *w, const piece_list *pl, const float *params, int ftype)
{
    size_t most = 0;
    for (int i = 0; i < pl->n; i++) {
        const lmc_gguf_piece *p = &pl->p[i];
        uint64_t ne[3] = {p->ndim >= 2 ? p->cols : p->rows, p->rows, p->n3};
        LMC_TRY(lmc_gguf_add_tensor(w, p->name, p->ndim, ne, tensor_type(p, ftype)));
        most = p->rows * p->cols * p->n3 > most ? p->rows * p->cols * p->n3 : most;
    }
    float *rows = malloc(most * sizeof(float));
    uint8_t *bytes = malloc(most * sizeof(float));
    lmc_status s = rows && bytes ? lmc_gguf_writer_begin(w) : lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < pl->n && s == LMC_OK; i++)
        s = write_piece(w, &pl->p[i], params, tensor_type(&pl->p[i], ftype), rows, bytes);
    free(rows);
    free(bytes);
    return s;
}

lmc_status lmc_gguf_export(const char *path, const char *name, const lmc_model_config *cfg,
                           const lmc_layout *layout, const float *params, const lmc_tokenizer *tok, int ftype)
{
    LMC_TRY(lmc_gguf_check_config(cfg));
    const char *arch = strcmp(cfg->family, "gpt2") ? "llama" : "gpt2";
    lmc_tok_vocab v;
    LMC_TRY(lmc_tok_to_vocab(tok, cfg->vocab, &v));
    piece_list pl = {0};
    lmc_gguf_writer *w = NULL;
    lmc_status s = list_pieces(cfg, layout, &pl);
    if (s == LMC_OK)
        s = lmc_gguf_writer_new(&w, path);
    if (s == LMC_OK) {
        lmc_gguf_put_str(w, "general.architecture", arch);
        lmc_gguf_put_str(w, "general.name", name);
        lmc_gguf_put_u32(w, "general.file_type", (uint32_t)ftype);
        lmc_gguf_put_u32(w, "general.quantization_version", 2);
        put_arch(w, cfg, arch);
        put_tokenizer(w, tok, &v);
        s = write_model(w, &pl, params, ftype);
    }
    if (s == LMC_OK) {
        s = lmc_gguf_writer_commit(w);
        w = NULL;
    }
    lmc_gguf_writer_abort(w);
    free(pl.p);
    lmc_tok_vocab_free(&v);
    return s;
}
