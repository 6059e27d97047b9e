/* cmd_tokenize.c: `lmc tokenize`: text files -> llm.c train/val token shards,
 * on all cores, with a progress bar and a summary. The work is in
 * src/tokenizer/shard.c; this file reads flags and prints. */
#include "cli.h"
#include "lmc/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int quiet, tty;
    double last;
} bar_state;

static void fmt_time(char *buf, size_t n, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, n, "?");
    else
        snprintf(buf, n, "%d:%02d:%02d", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
}

/* [#####.....]  45% 512.0/1133.1 MB  12.3 Mtok/s  ETA 0:00:42 */
static void bar(void *ctx, const lmc_tok_progress *p)
{
    bar_state *b = ctx;
    double now = lmc_now();
    if (b->quiet || now - b->last < (b->tty ? 0.2 : 10))
        return;
    b->last = now;
    double rate = p->elapsed > 0 ? p->tokens / p->elapsed : 0, mbs = p->elapsed > 0 ? p->bytes_done / p->elapsed : 0;
    char eta[32] = "?";
    if (p->bytes_total > 0) {
        double frac = p->bytes_done / p->bytes_total;
        char hashes[31];
        int k = (int)(frac * 30 + 0.5);
        for (int i = 0; i < 30; i++)
            hashes[i] = i < k ? '#' : '.';
        hashes[30] = 0;
        if (mbs > 0)
            fmt_time(eta, sizeof eta, (p->bytes_total - p->bytes_done) / mbs);
        fprintf(stderr, "[%s] %3.0f%% %.1f/%.1f MB", hashes, 100 * frac, p->bytes_done / 1e6, p->bytes_total / 1e6);
    } else {
        fprintf(stderr, "%.1f MB", p->bytes_done / 1e6);
    }
    fprintf(stderr, "  %.2f Mtok/s  %.1f MB/s  ETA %s%s", rate / 1e6, mbs / 1e6, eta, b->tty ? "\033[K\r" : "\n");
    fflush(stderr);
}

/* --doc-separator: "none", a special token's name, or a token id. */
static lmc_status pick_separator(const lmc_tokenizer *tok, const char *arg, int *id)
{
    *id = -1;
    if (!arg) {
        *id = lmc_tok_special_id(tok, "<|endoftext|>"); /* the default, when the vocabulary has it */
        return LMC_OK;
    }
    if (!strcmp(arg, "none"))
        return LMC_OK;
    if ((*id = lmc_tok_special_id(tok, arg)) >= 0)
        return LMC_OK;
    long long v;
    if (lmc_parse_int(arg, "--doc-separator", 0, lmc_tok_vocab_size(tok) - 1, &v) == LMC_OK) {
        *id = (int)v;
        return LMC_OK;
    }
    return lmc_err(LMC_EINVAL, "--doc-separator: '%s' is neither a special token of this tokenizer nor a token id "
                   "below %d (or 'none')", arg, lmc_tok_vocab_size(tok));
}

static lmc_status parse_choice(const char *flag, const char *v, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return LMC_OK;
        }
    return lmc_err(LMC_EINVAL, "%s: '%s' is not one of the choices (see --help)", flag, v);
}

static void summary(const lmc_tok_shard_stats *st, const char *prefix, int sep, int threads)
{
    double tokens = st->train_tokens + st->val_tokens;
    printf("documents %.0f, input %.2f MB, tokens %.0f (%.3f bytes/token), %d-byte tokens\n", st->docs,
           st->bytes / 1e6, tokens, tokens > 0 ? st->bytes / tokens : 0, st->token_bytes);
    printf("train: %.0f tokens in %d shard%s (%s_train_*.bin)\n", st->train_tokens, st->train_shards,
           st->train_shards == 1 ? "" : "s", prefix);
    printf("val:   %.0f tokens in %d shard%s (%s_val_*.bin)\n", st->val_tokens, st->val_shards,
           st->val_shards == 1 ? "" : "s", prefix);
    printf("separator %d before each document; %.2f s, %.2f Mtok/s, %.1f MB/s on %d thread%s\n", sep, st->seconds,
           st->seconds > 0 ? tokens / st->seconds / 1e6 : 0, st->seconds > 0 ? st->bytes / st->seconds / 1e6 : 0,
           threads, threads == 1 ? "" : "s");
}

int lmc_cmd_tokenize(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *sep_arg = NULL, *docs = "file", *dtype = "auto", *shard = "100M",
               *block = "0";
    double val = 0.1;
    long long threads = 0;
    cli_list in = {0};
    bar_state bs = {.tty = isatty(2)};
    cli_opt opts[] = {
        {"tokenizer", CLI_STR, &dir, CLI_TOKENIZER_HELP},
        {"input", CLI_LIST, &in, "text: files, directories (recursively), globs, or - for stdin; repeatable"},
        {"out", CLI_STR, &out, "output prefix: PREFIX_train_000000.bin, PREFIX_val_000000.bin, ..."},
        {"val-fraction", CLI_FLOAT, &val, "share of the input (bytes) for val, spread evenly (default 0.1)", 0, 0.99},
        {"shard-tokens", CLI_STR, &shard, "tokens per shard, e.g. 100M (default)"},
        {"doc-separator", CLI_STR, &sep_arg, "token before each document: a special's name, an id, or none "
                                             "(default <|endoftext|> when the vocabulary has it)"},
        {"docs", CLI_STR, &docs, "what a document is: file (default) or blank (split at blank lines, as llm.c)"},
        {"dtype", CLI_STR, &dtype, "token size: auto (default: u16 when the vocabulary fits), u16, u32"},
        {"threads", CLI_INT, &threads, "encoder threads (default: all cores)", 0, 256},
        {"block-bytes", CLI_STR, &block, "work unit in bytes (default: from the input size)"},
        {"quiet", CLI_BOOL, &bs.quiet, "no progress bar"},
        {NULL},
    };
    cli_spec spec = {.cmd = "tokenize", .opts = opts,
                     .synopsis = "--tokenizer DIR --input FILES|DIRS|- --out PREFIX [flags]",
                     .about = "Encodes text into llm.c token shards (256 int32 header: magic 20240520, version 1 = "
                              "uint16 / 2 = uint32 tokens, token count; then the tokens). The separator token goes "
                              "before every document. Output is identical for any number of threads."};
    lmc_status s = cli_parse_require(&spec, argc, argv, "tokenizer input out");
    static const char *const doc_names[] = {"file", "blank"}, *const dtype_names[] = {"auto", "u16", "u32"};
    int docs_i = 0, dtype_i = 0;
    double shard_n = 0, block_n = 0;
    if (s == LMC_OK)
        s = parse_choice("--docs", docs, doc_names, 2, &docs_i);
    if (s == LMC_OK)
        s = parse_choice("--dtype", dtype, dtype_names, 3, &dtype_i);
    if (s == LMC_OK)
        s = lmc_parse_count(shard, "--shard-tokens", &shard_n);
    if (s == LMC_OK)
        s = lmc_parse_count(block, "--block-bytes", &block_n);
    char **paths = NULL;
    int np = 0;
    double total = 0;
    if (s == LMC_OK)
        s = lmc_tok_list_inputs((const char *const *)in.v, in.n, &paths, &np, &total);
    if (s != LMC_OK) {
        cli_list_free(&in);
        return cli_exit(&spec, s);
    }
    lmc_tokenizer *tok = NULL;
    int sep = -1;
    s = lmc_tok_load(dir, &tok);
    if (s == LMC_OK)
        s = pick_separator(tok, sep_arg, &sep);
    lmc_tok_shard_opts o = {.paths = paths, .n_paths = np, .total_bytes = total, .out_prefix = out,
                            .val_fraction = val, .shard_tokens = (long long)shard_n, .separator_id = sep,
                            .token_bytes = dtype_i == 0 ? 0 : dtype_i == 1 ? 2 : 4,
                            .docs = docs_i ? LMC_DOCS_BLANK : LMC_DOCS_FILE, .threads = (int)threads,
                            .block_bytes = (size_t)block_n, .progress = bar, .progress_ctx = &bs};
    lmc_tok_shard_stats st;
    if (s == LMC_OK)
        s = lmc_tok_shard(tok, &o, &st);
    if (!bs.quiet && bs.tty)
        fprintf(stderr, "\033[K");
    if (s == LMC_OK)
        summary(&st, out, sep, threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    lmc_tok_free(tok);
    lmc_tok_free_inputs(paths, np);
    cli_list_free(&in);
    return cli_fail("tokenize", s);
}
