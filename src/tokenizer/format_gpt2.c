/* format_gpt2.c: GPT-2's tokenizer files. encoder.json maps each token,
 * spelled in GPT-2's byte alphabet (every byte a printable character: 'Ġ'
 * is the space), to its id; vocab.bpe lists the merges in rank order, one
 * "left right" pair a line after a "#version" line. A token that is longer
 * than one byte and made by no merge is special (GPT-2's <|endoftext|>). */
#include "tokenizer/tok_internal.h"

#include <math.h>
#include <stdlib.h>

#define ALPHABET_MAX 324 /* 256 + the 68 bytes GPT-2 moves above 255 */

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes spell themselves, the
 * rest (controls, space, 0x7F-0xA0, 0xAD) become U+0100.. in byte order. */
uint32_t tok_gpt2_byte_char(int b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (uint32_t)b;
    uint32_t n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
            n++;
    return 256 + n;
}

static void char_to_byte_table(int16_t tab[ALPHABET_MAX])
{
    for (int i = 0; i < ALPHABET_MAX; i++)
        tab[i] = -1;
    for (int b = 0; b < 256; b++)
        tab[tok_gpt2_byte_char(b)] = (int16_t)b;
}

/* Spelled token (UTF-8 in the alphabet) -> bytes appended to out. On failure
 * *bad is the offending code point (UC_INVALID for malformed UTF-8). */
static int unspell(const int16_t tab[ALPHABET_MAX], const char *s, size_t n, lmc_sb *out, uint32_t *bad)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_next((const uint8_t *)s + i, n - i, &cp);
        if (cp == UC_INVALID || cp >= ALPHABET_MAX || tab[cp] < 0) {
            *bad = cp;
            return 0;
        }
        lmc_sb_putc(out, (char)tab[cp]);
        i += (size_t)len;
    }
    return 1;
}

void tok_gpt2_spell(lmc_sb *b, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_gpt2_byte_char(s[i]);
        if (cp < 0x80)
            lmc_sb_putc(b, (char)cp);
        else {
            lmc_sb_putc(b, (char)(0xC0 | (cp >> 6)));
            lmc_sb_putc(b, (char)(0x80 | (cp & 0x3F)));
        }
    }
}

static lmc_status bad_char(const char *what, const char *ctx, const char *tok, uint32_t cp)
{
    if (cp == UC_INVALID)
        return lmc_err(LMC_EFORMAT, "%s: %s'%.80s': malformed UTF-8", what, ctx, tok);
    return lmc_err(LMC_EFORMAT, "%s: %s'%.80s': character U+%04X is not in GPT-2's byte alphabet", what, ctx, tok,
                   cp);
}

/* ---------- encoder.json ---------- */

static lmc_status read_encoder(const lmc_json *j, const char *what, tok_parts *p, char ***names)
{
    if (j->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: expected a JSON object mapping tokens to ids", what);
    int n = j->n;
    if (n < 256)
        return lmc_err(LMC_EFORMAT, "%s: %d tokens; a byte-level BPE needs at least the 256 byte tokens", what, n);
    int16_t tab[ALPHABET_MAX];
    char_to_byte_table(tab);
    lmc_sb *bytes = calloc((size_t)n, sizeof *bytes);
    *names = calloc((size_t)n, sizeof **names);
    if (!bytes || !*names) {
        free(bytes);
        return lmc_err(LMC_ENOMEM, "%s: out of memory", what);
    }
    lmc_status s = LMC_OK;
    for (const lmc_json *m = j->child; m && s == LMC_OK; m = m->next) {
        double v = m->num;
        if (m->type != LMC_JSON_NUM || v != floor(v))
            s = lmc_err(LMC_EFORMAT, "%s: token '%.80s': id must be an integer", what, m->key);
        else if (v < 0 || v >= n)
            s = lmc_err(LMC_EFORMAT, "%s: token '%.80s': id %.0f is out of range (ids must be 0..%d for %d tokens)",
                        what, m->key, v, n - 1, n);
        else if ((*names)[(int)v])
            s = lmc_err(LMC_EFORMAT, "%s: tokens '%.80s' and '%.80s' both have id %d", what, (*names)[(int)v],
                        m->key, (int)v);
        else if (!m->key[0])
            s = lmc_err(LMC_EFORMAT, "%s: empty token (id %d)", what, (int)v);
        else {
            uint32_t bad;
            (*names)[(int)v] = m->key;
            lmc_sb_put(&bytes[(int)v], "", 0);
            if (!unspell(tab, m->key, strlen(m->key), &bytes[(int)v], &bad))
                s = bad_char(what, "token ", m->key, bad);
        }
    }
    size_t total = 0;
    for (int i = 0; i < n && s == LMC_OK; i++)
        total += bytes[i].len;
    p->n_vocab = n;
    p->blob = s == LMC_OK ? malloc(total + 1) : NULL;
    p->off = s == LMC_OK ? malloc(((size_t)n + 1) * sizeof *p->off) : NULL;
    if (s == LMC_OK && (!p->blob || !p->off))
        s = lmc_err(LMC_ENOMEM, "%s: out of memory", what);
    if (s == LMC_OK) {
        p->off[0] = 0;
        for (int i = 0; i < n; i++) {
            memcpy(p->blob + p->off[i], bytes[i].s, bytes[i].len);
            p->off[i + 1] = p->off[i] + bytes[i].len;
        }
    }
    for (int i = 0; i < n; i++)
        lmc_sb_free(&bytes[i]);
    free(bytes);
    return s;
}

/* ---------- vocab.bpe ---------- */

typedef struct {
    const char *what, *enc_what;
    const int16_t *tab;
    tok_parts *p;
    tok_idmap *map;
    int cap;
    int *lines;
} bpe_reader;

/* Token id of one spelled token on a merge line, or an error. */
static lmc_status lookup(bpe_reader *r, int line, const char *tok, size_t n, const char *role, int *id)
{
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_sb_put(&b, "", 0);
    uint32_t bad;
    char shown[128];
    snprintf(shown, sizeof shown, "%.*s", (int)(n < 100 ? n : 100), tok);
    lmc_status s = LMC_OK;
    if (!unspell(r->tab, tok, n, &b, &bad)) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "line %d: %s token ", line, role);
        s = bad_char(r->what, ctx, shown, bad);
    } else if ((*id = tok_idmap_find(r->map, r->p->blob, r->p->off, (const uint8_t *)b.s, b.len)) < 0) {
        s = lmc_err(LMC_EFORMAT, "%s: line %d: %s token '%s' is not in %s", r->what, line, role, shown,
                    r->enc_what);
    }
    lmc_sb_free(&b);
    return s;
}

static lmc_status add_merge(bpe_reader *r, int line, const char *s, size_t n)
{
    const char *sp = memchr(s, ' ', n);
    if (!sp || sp == s || sp + 1 == s + n || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)))
        return lmc_err(LMC_EFORMAT, "%s: line %d: expected two tokens separated by one space, got '%.*s'", r->what,
                       line, (int)(n < 100 ? n : 100), s);
    tok_parts *p = r->p;
    if (p->n_merges == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        tok_merge *m = realloc(p->merges, (size_t)r->cap * sizeof *m);
        if (m)
            p->merges = m;
        int *l = realloc(r->lines, (size_t)r->cap * sizeof *l);
        if (l)
            r->lines = l;
        if (!m || !l)
            return lmc_err(LMC_ENOMEM, "%s: out of memory", r->what);
    }
    tok_merge *m = &p->merges[p->n_merges];
    size_t a = (size_t)(sp - s), b = n - a - 1;
    LMC_TRY(lookup(r, line, s, a, "left", &m->left));
    LMC_TRY(lookup(r, line, sp + 1, b, "right", &m->right));
    /* the merged token must be in the vocabulary too: look up its bytes */
    size_t la = (size_t)(p->off[m->left + 1] - p->off[m->left]);
    size_t lb = (size_t)(p->off[m->right + 1] - p->off[m->right]);
    uint8_t *cat = malloc(la + lb);
    if (!cat)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", r->what);
    memcpy(cat, p->blob + p->off[m->left], la);
    memcpy(cat + la, p->blob + p->off[m->right], lb);
    m->result = tok_idmap_find(r->map, p->blob, p->off, cat, la + lb);
    free(cat);
    if (m->result < 0)
        return lmc_err(LMC_EFORMAT, "%s: line %d: merged token '%.*s%.*s' is not in %s", r->what, line,
                       (int)(a < 60 ? a : 60), s, (int)(b < 60 ? b : 60), sp + 1, r->enc_what);
    r->lines[p->n_merges++] = line;
    return LMC_OK;
}

static lmc_status read_bpe(bpe_reader *r, const char *text, size_t n)
{
    int line = 0;
    for (size_t i = 0; i < n;) {
        const char *l = text + i, *e = memchr(l, '\n', n - i);
        size_t len = e ? (size_t)(e - l) : n - i;
        i += len + 1;
        line++;
        if (len && l[len - 1] == '\r')
            len--;
        if (len == 0 || (line == 1 && l[0] == '#'))
            continue; /* the "#version: 0.2" header, blank lines */
        LMC_TRY(add_merge(r, line, l, len));
    }
    return LMC_OK;
}

/* ---------- loading ---------- */

static lmc_status find_specials(tok_parts *p)
{
    uint8_t *made = calloc((size_t)p->n_vocab, 1);
    p->special_ids = malloc((size_t)p->n_vocab * sizeof *p->special_ids);
    if (!made || !p->special_ids) {
        free(made);
        return lmc_err(LMC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < p->n_merges; i++)
        made[p->merges[i].result] = 1;
    for (int id = 0; id < p->n_vocab; id++)
        if (!made[id] && p->off[id + 1] - p->off[id] > 1)
            p->special_ids[p->n_special++] = id;
    free(made);
    return LMC_OK;
}

lmc_status tok_load_gpt2_mem(const char *enc_json, size_t enc_n, const char *bpe, size_t bpe_n,
                             const char *enc_what, const char *bpe_what, lmc_tokenizer **out)
{
    *out = NULL;
    lmc_json *j = NULL;
    LMC_TRY(lmc_json_parse(enc_json, enc_n, enc_what, &j));
    tok_parts p = {.what = enc_what, .merges_what = bpe_what};
    char **names = NULL;
    tok_idmap map = {0};
    int16_t tab[ALPHABET_MAX];
    char_to_byte_table(tab);
    bpe_reader r = {.what = bpe_what, .enc_what = enc_what, .tab = tab, .p = &p, .map = &map};
    lmc_status s = read_encoder(j, enc_what, &p, &names);
    if (s == LMC_OK)
        s = tok_idmap_init(&map, (size_t)p.n_vocab);
    for (int id = 0; s == LMC_OK && id < p.n_vocab; id++) {
        int old = tok_idmap_add(&map, p.blob, p.off, id);
        if (old == -2)
            s = lmc_err(LMC_ENOMEM, "%s: out of memory", enc_what);
        else if (old >= 0)
            s = lmc_err(LMC_EFORMAT, "%s: tokens '%.80s' (id %d) and '%.80s' (id %d) are the same bytes", enc_what,
                        names[old], old, names[id], id);
    }
    if (s == LMC_OK)
        s = read_bpe(&r, bpe, bpe_n);
    if (s == LMC_OK)
        s = find_specials(&p);
    tok_idmap_free(&map);
    free(names);
    lmc_json_free(j);
    p.merge_lines = r.lines;
    p.merges_what = "line";
    p.merges_file = bpe_what;
    if (s == LMC_OK)
        s = tok_build(&p, out);
    else
        tok_parts_free(&p);
    free(r.lines);
    return s;
}

/* ---------- saving ---------- */

lmc_status tok_save_gpt2_sb(const lmc_tokenizer *t, lmc_sb *enc, lmc_sb *bpe)
{
    tok_idmap map;
    LMC_TRY(tok_idmap_init(&map, (size_t)t->n_vocab));
    lmc_status s = LMC_OK;
    lmc_sb tokb;
    lmc_sb_init(&tokb);
    lmc_sb_putc(enc, '{');
    for (int id = 0; id < t->n_vocab && s == LMC_OK; id++) {
        int old = tok_idmap_add(&map, t->blob, t->off, id);
        if (old != -1) {
            s = old == -2 ? lmc_err(LMC_ENOMEM, "out of memory")
                          : lmc_err(LMC_EUNSUPPORTED, "tokens %d and %d have the same bytes; GPT-2's encoder.json "
                                    "cannot hold both", old, id);
            break;
        }
        tokb.len = 0;
        tok_gpt2_spell(&tokb, t->blob + t->off[id], (size_t)(t->off[id + 1] - t->off[id]));
        lmc_sb_puts(enc, id ? ", " : "");
        lmc_sb_json_str(enc, tokb.s ? tokb.s : "", tokb.len);
        lmc_sb_printf(enc, ": %d", id);
    }
    lmc_sb_puts(enc, "}");
    lmc_sb_puts(bpe, "#version: 0.2\n");
    for (int i = 0; i < t->n_merges && s == LMC_OK; i++) {
        const tok_merge *m = &t->merges[i];
        tok_gpt2_spell(bpe, t->blob + t->off[m->left], (size_t)(t->off[m->left + 1] - t->off[m->left]));
        lmc_sb_putc(bpe, ' ');
        tok_gpt2_spell(bpe, t->blob + t->off[m->right], (size_t)(t->off[m->right + 1] - t->off[m->right]));
        lmc_sb_putc(bpe, '\n');
    }
    lmc_sb_free(&tokb);
    tok_idmap_free(&map);
    if (s == LMC_OK && (enc->oom || bpe->oom))
        s = lmc_err(LMC_ENOMEM, "out of memory writing GPT-2 files");
    return s;
}
