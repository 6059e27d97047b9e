/* format_gguf.c: the tokenizer as llama.cpp's "gpt2" tokenizer model keeps
 * it in a GGUF file: every token's text (normal tokens spelled in GPT-2's
 * byte alphabet, as in encoder.json; special tokens as their own text,
 * type CONTROL), the merges as "left right" strings (as in vocab.bpe).
 * Reading goes through GPT-2's loader (the same checks, messages naming
 * the GGUF key); nothing here knows the file format itself, which
 * src/model/gguf_vocab.c handles. */
#include "lmc/gguf.h"
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* ---------- tokenizer -> strings ---------- */

void lmc_tok_vocab_free(lmc_tok_vocab *v)
{
    free(v->tokens);
    free(v->types);
    free(v->merges);
    free(v->blob);
    memset(v, 0, sizeof *v);
}

static size_t tok_len(const lmc_tokenizer *t, int id) { return (size_t)(t->off[id + 1] - t->off[id]); }

/* Token texts into b, their offsets into off[0..n]. */
static void spell_tokens(const lmc_tokenizer *t, int n, lmc_sb *b, uint64_t *off, int32_t *types)
{
    for (int id = 0; id < n; id++) {
        off[id] = b->len;
        if (id >= t->n_vocab) {
            lmc_sb_printf(b, "[PAD%d]", id);
            types[id] = LMC_GGUF_TOK_UNUSED;
        } else if (t->is_special[id]) {
            lmc_sb_put(b, (const char *)t->blob + t->off[id], tok_len(t, id));
            types[id] = LMC_GGUF_TOK_CONTROL;
        } else {
            tok_gpt2_spell(b, t->blob + t->off[id], tok_len(t, id));
            types[id] = LMC_GGUF_TOK_NORMAL;
        }
    }
    off[n] = b->len;
}

/* llama.cpp maps each text to one id: two tokens with the same text
 * would break its tokenizer. */
static lmc_status check_distinct(const uint8_t *blob, const uint64_t *off, int n)
{
    tok_idmap map;
    LMC_TRY(tok_idmap_init(&map, (size_t)n));
    lmc_status s = LMC_OK;
    for (int id = 0; id < n && s == LMC_OK; id++) {
        int old = tok_idmap_add(&map, blob, off, id);
        if (old == -2)
            s = lmc_err(LMC_ENOMEM, "out of memory");
        else if (old >= 0)
            s = lmc_err(LMC_EUNSUPPORTED, "tokens %d and %d have the same text '%.*s' in GGUF form; llama.cpp needs "
                        "every token's text distinct", old, id, (int)(off[id + 1] - off[id] < 60 ? off[id + 1] - off[id] : 60),
                        (const char *)blob + off[id]);
    }
    tok_idmap_free(&map);
    return s;
}

lmc_status lmc_tok_to_vocab(const lmc_tokenizer *t, int n_vocab, lmc_tok_vocab *v)
{
    memset(v, 0, sizeof *v);
    if (n_vocab < t->n_vocab)
        return lmc_err(LMC_EINVAL, "the tokenizer has %d tokens but the model only %d", t->n_vocab, n_vocab);
    int n = n_vocab, m = t->n_merges;
    uint64_t *off = malloc(((size_t)n + 1) * sizeof *off), *moff = malloc(((size_t)m + 1) * sizeof *moff);
    v->types = malloc((size_t)n * sizeof *v->types);
    v->tokens = malloc((size_t)n * sizeof *v->tokens);
    v->merges = malloc(((size_t)m + 1) * sizeof *v->merges);
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_status s = off && moff && v->types && v->tokens && v->merges ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK) {
        spell_tokens(t, n, &b, off, v->types);
        s = b.oom ? lmc_err(LMC_ENOMEM, "out of memory") : check_distinct((const uint8_t *)b.s, off, n);
    }
    for (int i = 0; i < m && s == LMC_OK; i++) {
        const tok_merge *mg = &t->merges[i];
        moff[i] = b.len;
        tok_gpt2_spell(&b, t->blob + t->off[mg->left], tok_len(t, mg->left));
        lmc_sb_putc(&b, ' ');
        tok_gpt2_spell(&b, t->blob + t->off[mg->right], tok_len(t, mg->right));
    }
    if (s == LMC_OK && b.oom)
        s = lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK) {
        moff[m] = b.len;
        v->blob = b.s;
        b.s = NULL;
        v->n = n, v->n_merges = m;
        for (int id = 0; id < n; id++)
            v->tokens[id] = (lmc_gguf_str){v->blob + off[id], (size_t)(off[id + 1] - off[id])};
        for (int i = 0; i < m; i++)
            v->merges[i] = (lmc_gguf_str){v->blob + moff[i], (size_t)(moff[i + 1] - moff[i])};
    }
    lmc_sb_free(&b);
    free(off);
    free(moff);
    if (s != LMC_OK)
        lmc_tok_vocab_free(v);
    return s;
}

/* ---------- strings -> tokenizer ---------- */

/* GPT-2's files, rebuilt from the strings: encoder.json maps each token's
 * spelling to its id, vocab.bpe lists the merges under a version line. */
static lmc_status to_gpt2_files(const lmc_tok_vocab *v, int n, const char *what, lmc_sb *enc, lmc_sb *bpe)
{
    lmc_sb sp;
    lmc_sb_init(&sp);
    lmc_sb_putc(enc, '{');
    for (int id = 0; id < n; id++) {
        const lmc_gguf_str *s = &v->tokens[id];
        int literal = v->types && (v->types[id] == LMC_GGUF_TOK_CONTROL || v->types[id] == LMC_GGUF_TOK_USER);
        sp.len = 0;
        if (literal)
            tok_gpt2_spell(&sp, (const uint8_t *)s->s, s->n);
        lmc_sb_puts(enc, id ? ", " : "");
        lmc_sb_json_str(enc, literal ? (sp.s ? sp.s : "") : s->s, literal ? sp.len : s->n);
        lmc_sb_printf(enc, ": %d", id);
    }
    lmc_sb_putc(enc, '}');
    lmc_sb_free(&sp);
    lmc_sb_puts(bpe, "#version: 0.2\n");
    for (int i = 0; i < v->n_merges; i++) {
        const lmc_gguf_str *m = &v->merges[i];
        if (memchr(m->s, '\n', m->n) || memchr(m->s, '\r', m->n))
            return lmc_err(LMC_EFORMAT, "%s: merges[%d] holds a line break", what, i);
        lmc_sb_put(bpe, m->s, m->n);
        lmc_sb_putc(bpe, '\n');
    }
    return enc->oom || bpe->oom ? lmc_err(LMC_ENOMEM, "%s: out of memory", what) : LMC_OK;
}

/* Trailing UNUSED "[PAD...]" tokens are the padding lmc_tok_to_vocab (and
 * llama.cpp's converter) add up to the model's rows: not the tokenizer's. */
static int unpadded(const lmc_tok_vocab *v)
{
    int n = v->n;
    while (n > 0 && v->types && v->types[n - 1] == LMC_GGUF_TOK_UNUSED && v->tokens[n - 1].n >= 4 &&
           !memcmp(v->tokens[n - 1].s, "[PAD", 4))
        n--;
    return n;
}

lmc_status lmc_tok_from_vocab(const lmc_tok_vocab *v, const char *what, lmc_tokenizer **out)
{
    *out = NULL;
    lmc_sb enc, bpe;
    lmc_sb_init(&enc);
    lmc_sb_init(&bpe);
    char enc_what[512], bpe_what[512];
    snprintf(enc_what, sizeof enc_what, "%s: tokenizer.ggml.tokens", what);
    snprintf(bpe_what, sizeof bpe_what, "%s: tokenizer.ggml.merges (merges[i] as line i + 2)", what);
    lmc_status s = to_gpt2_files(v, unpadded(v), what, &enc, &bpe);
    if (s == LMC_OK)
        s = tok_load_gpt2_mem(enc.s, enc.len, bpe.s, bpe.len, enc_what, bpe_what, out);
    lmc_sb_free(&enc);
    lmc_sb_free(&bpe);
    return s;
}

/* ---------- pre-tokenizers ---------- */

/* The tokenizer.ggml.pre names llama.cpp splits with GPT-2's regex. */
static const char *const gpt2_pre[] = {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
                                       "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "exaone4", "mpt",
                                       "olmo", "jais", "trillion", "granite-docling", NULL};

int lmc_gguf_pre_is_gpt2(const char *s, size_t n)
{
    for (int i = 0; gpt2_pre[i]; i++)
        if (strlen(gpt2_pre[i]) == n && !memcmp(gpt2_pre[i], s, n))
            return 1;
    return 0;
}
