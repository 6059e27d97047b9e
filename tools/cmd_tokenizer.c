/* cmd_tokenizer.c: `lmc tokenizer train|info|eval|convert`: learn a
 * byte-level BPE from text, describe one, measure bytes per token on text,
 * and re-save one (lmc's format plus GPT-2's files). */
#include "cli.h"
#include "lmc/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* Progress on stderr: redrawn in place on a terminal, a line every 10 s otherwise. */
typedef struct {
    int quiet, tty;
    double last;
} progress_state;

static void progress(void *ctx, const lmc_tok_progress *p)
{
    progress_state *ps = ctx;
    double now = lmc_now();
    if (ps->quiet || (!ps->tty && now - ps->last < 10))
        return;
    ps->last = now;
    const char *end = ps->tty ? "\033[K\r" : "\n";
    if (!strcmp(p->phase, "count")) {
        double mb = p->bytes_done / 1e6;
        fprintf(stderr, "counting words: %.1f MB", mb);
        if (p->bytes_total > 0)
            fprintf(stderr, " of %.1f MB (%.0f%%)", p->bytes_total / 1e6, 100 * p->bytes_done / p->bytes_total);
        fprintf(stderr, ", %.1f MB/s%s", p->elapsed > 0 ? mb / p->elapsed : 0, end);
    } else {
        double frac = p->merges_total > 0 ? (double)p->merges_done / p->merges_total : 1;
        fprintf(stderr, "merging: %d of %d merges (%.0f%%), %.1f s%s", p->merges_done, p->merges_total,
                100 * frac, p->elapsed, end);
    }
    fflush(stderr);
}

static void progress_done(progress_state *ps)
{
    if (!ps->quiet && ps->tty)
        fprintf(stderr, "\033[K");
}

static lmc_status load_inputs(cli_list *in, char ***paths, int *n, double *total)
{
    return lmc_tok_list_inputs((const char *const *)in->v, in->n, paths, n, total);
}

static int cmd_train(int argc, char **argv)
{
    long long vocab = 0, min_freq = 1, max_piece = 256;
    const char *out = NULL;
    cli_list in = {0}, sp = {0};
    progress_state ps = {.tty = isatty(2)};
    cli_opt opts[] = {
        {"vocab-size", CLI_INT, &vocab, "total vocabulary: 256 bytes + merges + specials", 257, 1 << 24},
        {"input", CLI_LIST, &in, "text: files, directories (recursively), globs, or - for stdin; repeatable"},
        {"out", CLI_STR, &out, "folder to write the tokenizer to"},
        {"special", CLI_LIST, &sp, "a special token to add after the merges (repeatable)"},
        {"min-frequency", CLI_INT, &min_freq, "stop when the best pair is seen fewer times (default 1)", 1, 1e15},
        {"max-piece-bytes", CLI_INT, &max_piece, "ignore longer pre-tokenized pieces (default 256)", 2, 1 << 20},
        {"quiet", CLI_BOOL, &ps.quiet, "no progress display"},
        {NULL},
    };
    cli_spec spec = {.cmd = "tokenizer train", .opts = opts,
                     .synopsis = "--vocab-size N --input FILES|DIRS|- --out DIR [--special S ...]",
                     .about = "Learns a byte-level BPE with GPT-2's pre-tokenizer. Deterministic: the same input "
                              "gives the same tokenizer. Writes DIR/lmc-tokenizer.json, plus encoder.json and "
                              "vocab.bpe in GPT-2's form."};
    lmc_status s = cli_parse_require(&spec, argc, argv, "vocab-size input out");
    char **paths = NULL;
    int np = 0;
    double total = 0;
    if (s == LMC_OK)
        s = load_inputs(&in, &paths, &np, &total);
    if (s != LMC_OK) {
        cli_list_free(&in);
        cli_list_free(&sp);
        return cli_exit(&spec, s);
    }
    lmc_tok_train_opts o = {.vocab_size = (int)vocab, .specials = (const char *const *)sp.v, .n_specials = sp.n,
                            .min_frequency = min_freq, .max_piece_bytes = (int)max_piece, .progress = progress,
                            .progress_ctx = &ps};
    lmc_tokenizer *tok = NULL;
    lmc_tok_train_stats st = {0};
    double t0 = lmc_now();
    s = lmc_tok_train_files(&o, paths, np, total, &tok, &st);
    progress_done(&ps);
    if (s == LMC_OK)
        s = lmc_tok_save(tok, out);
    if (s == LMC_OK) {
        printf("trained %s: vocabulary %d (%d merges, %d specials) from %zu distinct words\n", out,
               lmc_tok_vocab_size(tok), lmc_tok_n_merges(tok), lmc_tok_n_special(tok), st.words);
        printf("time: %.2f s counting, %.2f s merging, %.2f s total\n", st.count_seconds, st.merge_seconds,
               lmc_now() - t0);
        if (lmc_tok_vocab_size(tok) < vocab)
            printf("note: the text ran out of pairs seen %lld+ times before reaching %lld tokens\n", min_freq,
                   vocab);
    }
    lmc_tok_free(tok);
    lmc_tok_free_inputs(paths, np);
    cli_list_free(&in);
    cli_list_free(&sp);
    return cli_fail("tokenizer train", s);
}

static int cmd_info(int argc, char **argv)
{
    const char *dir = NULL;
    cli_opt opts[] = {{"tokenizer", CLI_STR, &dir, CLI_TOKENIZER_HELP}, {NULL}};
    cli_spec spec = {.cmd = "tokenizer info", .synopsis = "--tokenizer DIR", .opts = opts};
    lmc_status s = cli_parse_require(&spec, argc, argv, "tokenizer");
    if (s != LMC_OK)
        return cli_exit(&spec, s);
    lmc_tokenizer *tok;
    if ((s = lmc_tok_load(dir, &tok)) != LMC_OK)
        return cli_fail("tokenizer info", s);
    printf("vocab_size %d\nmerges %d\nspecials %d\n", lmc_tok_vocab_size(tok), lmc_tok_n_merges(tok),
           lmc_tok_n_special(tok));
    for (int i = 0; i < lmc_tok_n_special(tok); i++) {
        size_t len;
        int id = lmc_tok_special_at(tok, i);
        const char *b = lmc_tok_token_bytes(tok, id, &len);
        printf("special %d %.*s\n", id, (int)len, b);
    }
    printf("shard_dtype %s\n", lmc_tok_vocab_size(tok) <= 65536 ? "uint16" : "uint32");
    lmc_tok_free(tok);
    return 0;
}

/* Bytes per token over the inputs, each file encoded whole; *secs is the
 * best encode time over `repeat` passes (loading not counted). */
static lmc_status eval_files(const lmc_tokenizer *tok, char **paths, int n, int repeat, double *bytes,
                             double *tokens, double *secs)
{
    char **data = calloc((size_t)n, sizeof *data);
    size_t *len = calloc((size_t)n, sizeof *len);
    lmc_status s = data && len ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < n && s == LMC_OK; i++)
        s = lmc_read_file(paths[i], &data[i], &len[i]);
    *secs = 1e30;
    for (int r = 0; r < repeat && s == LMC_OK; r++) {
        lmc_tok_encoder *enc; /* a fresh cache each pass: no head start */
        if ((s = lmc_tok_encoder_new(tok, &enc)) != LMC_OK)
            break;
        int *ids = NULL;
        size_t cap = 0;
        double t0 = lmc_now();
        *bytes = *tokens = 0;
        for (int i = 0; i < n && s == LMC_OK; i++) {
            size_t nids = 0;
            s = lmc_tok_encoder_encode(enc, data[i], len[i], &ids, &nids, &cap);
            *bytes += (double)len[i];
            *tokens += (double)nids;
        }
        double dt = lmc_now() - t0;
        *secs = dt < *secs ? dt : *secs;
        free(ids);
        lmc_tok_encoder_free(enc);
    }
    for (int i = 0; i < n && data; i++)
        free(data[i]);
    free(data);
    free(len);
    return s;
}

static int cmd_eval(int argc, char **argv)
{
    const char *dir = NULL;
    long long repeat = 1;
    cli_list in = {0};
    cli_opt opts[] = {{"tokenizer", CLI_STR, &dir, CLI_TOKENIZER_HELP},
                      {"input", CLI_LIST, &in, "text files or directories (repeatable)"},
                      {"repeat", CLI_INT, &repeat, "encode this many times and report the best time (default 1)", 1,
                       100},
                      {NULL}};
    cli_spec spec = {.cmd = "tokenizer eval", .synopsis = "--tokenizer DIR --input FILES|DIRS", .opts = opts,
                     .about = "Prints bytes per token on the given text (higher is better compression) and the "
                              "single-threaded encoding speed (files are read first, loading is not timed)."};
    lmc_status s = cli_parse_require(&spec, argc, argv, "tokenizer input");
    char **paths = NULL;
    int np = 0;
    double total = 0, bytes = 0, tokens = 0, secs = 0;
    if (s == LMC_OK)
        s = load_inputs(&in, &paths, &np, &total);
    if (s != LMC_OK) {
        cli_list_free(&in);
        return cli_exit(&spec, s);
    }
    lmc_tokenizer *tok = NULL;
    s = lmc_tok_load(dir, &tok);
    if (s == LMC_OK)
        s = eval_files(tok, paths, np, (int)repeat, &bytes, &tokens, &secs);
    if (s == LMC_OK)
        printf("bytes %.0f tokens %.0f bytes_per_token %.4f vocab_size %d encode_seconds %.4f MB_per_s %.2f\n",
               bytes, tokens, tokens > 0 ? bytes / tokens : 0, lmc_tok_vocab_size(tok), secs,
               secs > 0 ? bytes / secs / 1e6 : 0);
    lmc_tok_free(tok);
    lmc_tok_free_inputs(paths, np);
    cli_list_free(&in);
    return cli_fail("tokenizer eval", s);
}

static int cmd_convert(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    cli_opt opts[] = {{"tokenizer", CLI_STR, &dir, CLI_TOKENIZER_HELP}, {"out", CLI_STR, &out, "folder to write"}, {NULL}};
    cli_spec spec = {.cmd = "tokenizer convert", .synopsis = "--tokenizer DIR --out DIR", .opts = opts,
                     .about = "Saves a tokenizer in lmc's format (plus GPT-2's files), e.g. GPT-2's own."};
    lmc_status s = cli_parse_require(&spec, argc, argv, "tokenizer out");
    if (s != LMC_OK)
        return cli_exit(&spec, s);
    lmc_tokenizer *tok;
    if ((s = lmc_tok_load(dir, &tok)) == LMC_OK)
        s = lmc_tok_save(tok, out);
    lmc_tok_free(tok);
    return cli_fail("tokenizer convert", s);
}

int lmc_cmd_tokenizer(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *help;
    } sub[] = {
        {"train", cmd_train, "learn a byte-level BPE from text"},
        {"info", cmd_info, "vocabulary size, merges and special tokens"},
        {"eval", cmd_eval, "bytes per token on text"},
        {"convert", cmd_convert, "re-save (lmc's format and GPT-2's files)"},
    };
    if (argc >= 2)
        for (size_t i = 0; i < sizeof sub / sizeof *sub; i++)
            if (!strcmp(argv[1], sub[i].name))
                return sub[i].fn(argc - 1, argv + 1);
    int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help)
        fprintf(stderr, "lmc tokenizer: unknown subcommand '%s'\n", argv[1]);
    fprintf(f, "usage: lmc tokenizer <subcommand> [flags]\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++)
        fprintf(f, "  %-8s %s\n", sub[i].name, sub[i].help);
    return help ? 0 : 2;
}
