/* shard.c: `lmc tokenize`: text files -> llm.c token shards, streaming, on
 * several threads, with output identical for any thread count.
 *
 * The main thread reads the inputs in blocks cut at safe points (input.c),
 * notes where documents start and sends each block to train or val. Blocks
 * go round a ring of slots: workers encode whichever block is next (each with
 * its own encoder and cache), and the main thread writes finished blocks in
 * input order, reads more into freed slots, and encodes too when it has
 * nothing else to do. There is no barrier: a worker that the OS puts aside
 * holds up one block, not a batch. Memory is bounded by the ring. */
#define _GNU_SOURCE
#include "tokenizer/tok_internal.h"

#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define SLOTS_PER_THREAD 8
#define MAX_THREADS 256

/* ---------- blocks ---------- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    size_t *docs; /* offsets where a document starts */
    int ndocs, capdocs;
    int val;
    int *ids;
    size_t nids, capids;
    int done;
    lmc_status st;
    char err[512];
} block;

static lmc_status push_id(block *b, int id)
{
    if (b->nids + 1 > b->capids) {
        size_t nc = b->capids ? b->capids * 2 : 1024;
        int *ni = realloc(b->ids, nc * sizeof *ni);
        if (!ni)
            return lmc_err(LMC_ENOMEM, "out of memory");
        b->ids = ni;
        b->capids = nc;
    }
    b->ids[b->nids++] = id;
    return LMC_OK;
}

/* Each document is encoded on its own, after the separator (llm.c style). */
static void encode_block(lmc_tok_encoder *e, int sep, block *b)
{
    size_t at = 0;
    b->nids = 0;
    b->st = LMC_OK;
    for (int d = 0; d <= b->ndocs && b->st == LMC_OK; d++) {
        size_t end = d < b->ndocs ? b->docs[d] : b->len;
        if (end > at)
            b->st = lmc_tok_encoder_encode(e, (const char *)b->data + at, end - at, &b->ids, &b->nids, &b->capids);
        at = end;
        if (b->st == LMC_OK && d < b->ndocs && sep >= 0)
            b->st = push_id(b, sep);
    }
    if (b->st != LMC_OK)
        snprintf(b->err, sizeof b->err, "%s", lmc_errmsg());
}

/* ---------- reading ---------- */

typedef struct {
    const lmc_tok_shard_opts *o;
    int file; /* index into paths */
    tok_stream st;
    int st_open, at_file_start;
    size_t block_bytes;
    double bytes, val_bytes, docs;
} reader;

/* Document starts inside a block: at 0 for a new file, and (blank mode)
 * after every "\n\n", scanning left to right as Python's str.split does. A
 * block never begins inside "\n\n": safe cuts have a non-space at k. */
static lmc_status find_docs(reader *r, block *b, int file_start)
{
    b->ndocs = 0;
    size_t need = 1;
    int blank = r->o->docs == LMC_DOCS_BLANK;
    for (size_t i = 0; blank && i + 1 < b->len; i++)
        if (b->data[i] == '\n' && b->data[i + 1] == '\n')
            need++, i++;
    if ((int)need > b->capdocs) {
        size_t *nd = realloc(b->docs, need * sizeof *nd);
        if (!nd)
            return lmc_err(LMC_ENOMEM, "out of memory");
        b->docs = nd;
        b->capdocs = (int)need;
    }
    if (file_start)
        b->docs[b->ndocs++] = 0;
    for (size_t i = 0; blank && i + 1 < b->len; i++)
        if (b->data[i] == '\n' && b->data[i + 1] == '\n') {
            i++;
            if (i + 1 < b->len) /* an empty last document is dropped */
                b->docs[b->ndocs++] = i + 1;
        }
    r->docs += b->ndocs;
    return LMC_OK;
}

/* Fills b with the next block; *got = 0 when the inputs are exhausted. */
static lmc_status read_block(reader *r, block *b, int *got)
{
    *got = 0;
    while (r->file < r->o->n_paths) {
        if (!r->st_open) {
            LMC_TRY(tok_stream_open(&r->st, r->o->paths[r->file], (size_t)64 << 20));
            r->st_open = 1;
            r->at_file_start = 1;
        }
        const uint8_t *data;
        size_t n;
        LMC_TRY(tok_stream_next(&r->st, r->block_bytes, &data, &n));
        if (n == 0) {
            tok_stream_close(&r->st);
            r->st_open = 0;
            r->file++;
            continue;
        }
        if (n > b->cap) {
            uint8_t *nd = realloc(b->data, n);
            if (!nd)
                return lmc_err(LMC_ENOMEM, "out of memory (%zu-byte block)", n);
            b->data = nd;
            b->cap = n;
        }
        memcpy(b->data, data, n);
        b->len = n;
        LMC_TRY(find_docs(r, b, r->at_file_start));
        r->at_file_start = 0;
        /* error diffusion: val takes a block when it is behind its share */
        r->bytes += (double)n;
        b->val = r->o->val_fraction > 0 && r->o->val_fraction * r->bytes - r->val_bytes >= (double)n / 2;
        if (b->val)
            r->val_bytes += (double)n;
        *got = 1;
        return LMC_OK;
    }
    return LMC_OK;
}

/* ---------- the ring ---------- */

typedef struct ring ring;

typedef struct {
    ring *R;
    int tid;
} worker_arg;

struct ring {
    const lmc_tokenizer *tok;
    int sep;
    block *slots;
    long long nslots;
    long long filled, claimed, written; /* block sequence numbers */
    lmc_tok_encoder *enc[MAX_THREADS];  /* [0] is the main thread's */
    pthread_t th[MAX_THREADS];
    worker_arg args[MAX_THREADS];
    int nworkers, quit;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every change */
};

/* Called with the lock held; encodes the next unclaimed block unlocked. */
static void encode_next(ring *R, int tid)
{
    block *b = &R->slots[R->claimed++ % R->nslots];
    pthread_mutex_unlock(&R->mu);
    encode_block(R->enc[tid], R->sep, b);
    pthread_mutex_lock(&R->mu);
    b->done = 1;
    pthread_cond_broadcast(&R->cv);
}

static void *worker(void *arg)
{
    worker_arg *a = arg;
    ring *R = a->R;
    pthread_mutex_lock(&R->mu);
    while (!R->quit) {
        if (R->claimed < R->filled)
            encode_next(R, a->tid);
        else
            pthread_cond_wait(&R->cv, &R->mu);
    }
    pthread_mutex_unlock(&R->mu);
    return NULL;
}

/* Starts up to nt-1 workers; fewer if threads cannot be made (slower, same output). */
static lmc_status ring_start(ring *R, int nt)
{
    R->nslots = (long long)nt * SLOTS_PER_THREAD;
    R->slots = calloc((size_t)R->nslots, sizeof *R->slots);
    if (!R->slots)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < nt; i++)
        LMC_TRY(lmc_tok_encoder_new(R->tok, &R->enc[i]));
    for (int i = 1; i < nt; i++) {
        R->args[i] = (worker_arg){R, i};
        if (pthread_create(&R->th[R->nworkers], NULL, worker, &R->args[i]) != 0)
            break;
        R->nworkers++;
    }
    return LMC_OK;
}

static void ring_stop(ring *R)
{
    pthread_mutex_lock(&R->mu);
    R->quit = 1;
    pthread_cond_broadcast(&R->cv);
    pthread_mutex_unlock(&R->mu);
    for (int i = 0; i < R->nworkers; i++)
        pthread_join(R->th[i], NULL);
    for (int i = 0; i < MAX_THREADS; i++)
        lmc_tok_encoder_free(R->enc[i]);
    for (long long i = 0; i < R->nslots && R->slots; i++) {
        free(R->slots[i].data);
        free(R->slots[i].docs);
        free(R->slots[i].ids);
    }
    free(R->slots);
}

typedef struct {
    const lmc_tok_shard_opts *o;
    reader *r;
    tok_series *train, *val;
    double t0;
} sink;

static void report(const sink *k)
{
    if (!k->o->progress)
        return;
    lmc_tok_progress p = {.phase = "tokenize", .bytes_done = k->r->bytes, .bytes_total = k->o->total_bytes,
                          .tokens = k->train->total + k->val->total, .docs = k->r->docs,
                          .elapsed = lmc_now() - k->t0};
    k->o->progress(k->o->progress_ctx, &p);
}

/* The main thread, lock held throughout except around real work: keep the
 * ring full, write finished blocks in order, otherwise encode, else wait. */
static lmc_status run(ring *R, sink *k)
{
    lmc_status s = LMC_OK;
    int eof = 0;
    pthread_mutex_lock(&R->mu);
    while (s == LMC_OK) {
        if (!eof && R->filled - R->written < R->nslots) {
            block *b = &R->slots[R->filled % R->nslots];
            int got = 0;
            pthread_mutex_unlock(&R->mu);
            b->done = 0;
            s = read_block(k->r, b, &got);
            pthread_mutex_lock(&R->mu);
            eof = !got;
            R->filled += got;
            pthread_cond_broadcast(&R->cv);
        } else if (R->written < R->filled && R->slots[R->written % R->nslots].done) {
            block *b = &R->slots[R->written % R->nslots];
            pthread_mutex_unlock(&R->mu);
            s = b->st != LMC_OK ? lmc_err(b->st, "%s", b->err)
                                : tok_series_write(b->val ? k->val : k->train, b->ids, b->nids);
            report(k);
            pthread_mutex_lock(&R->mu);
            R->written++;
        } else if (eof && R->written == R->filled) {
            break;
        } else if (R->claimed < R->filled) {
            encode_next(R, 0);
        } else {
            pthread_cond_wait(&R->cv, &R->mu);
        }
    }
    pthread_mutex_unlock(&R->mu);
    return s;
}

/* ---------- the run ---------- */

static lmc_status check_opts(const lmc_tokenizer *tok, const lmc_tok_shard_opts *o, int *token_bytes)
{
    int nv = lmc_tok_vocab_size(tok);
    *token_bytes = o->token_bytes ? o->token_bytes : (nv <= 65536 ? 2 : 4);
    if (*token_bytes != 2 && *token_bytes != 4)
        return lmc_err(LMC_EINVAL, "token size %d bytes is not supported (2 or 4)", o->token_bytes);
    if (*token_bytes == 2 && nv > 65536)
        return lmc_err(LMC_ERANGE, "a vocabulary of %d tokens does not fit uint16 shards (ids up to 65535); "
                       "use 4-byte tokens", nv);
    if (o->shard_tokens < 1 || o->shard_tokens > INT32_MAX)
        return lmc_err(LMC_EINVAL, "shard size %lld tokens is out of range (1..%d)", o->shard_tokens, INT32_MAX);
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return lmc_err(LMC_EINVAL, "val fraction %g is out of range [0, 1)", o->val_fraction);
    if (o->separator_id >= nv)
        return lmc_err(LMC_ERANGE, "separator token id %d is out of range (vocab size %d)", o->separator_id, nv);
    return LMC_OK;
}

static lmc_status make_dirs(const char *prefix)
{
    char *copy = lmc_strdup(prefix);
    if (!copy)
        return lmc_err(LMC_ENOMEM, "out of memory");
    char *dir = dirname(copy);
    lmc_status s = strcmp(dir, ".") ? lmc_mkdir_p(dir) : LMC_OK;
    free(copy);
    return s;
}

static size_t pick_block(const lmc_tok_shard_opts *o)
{
    if (o->block_bytes)
        return o->block_bytes;
    if (o->total_bytes <= 0)
        return (size_t)256 << 10;
    double b = o->total_bytes / 512; /* fine enough that val gets an even share */
    return b < 16384 ? 16384 : b > (1 << 20) ? (size_t)1 << 20 : (size_t)b;
}

lmc_status lmc_tok_shard(const lmc_tokenizer *tok, const lmc_tok_shard_opts *o, lmc_tok_shard_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    int tb;
    LMC_TRY(check_opts(tok, o, &tb));
    LMC_TRY(make_dirs(o->out_prefix));
    int nt = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    nt = nt < 1 ? 1 : nt > MAX_THREADS ? MAX_THREADS : nt;
    tok_series train = {.prefix = o->out_prefix, .split = "train", .token_bytes = tb, .per_shard = o->shard_tokens};
    tok_series val = train;
    val.split = "val";
    reader r = {.o = o, .block_bytes = pick_block(o)};
    sink k = {.o = o, .r = &r, .train = &train, .val = &val, .t0 = lmc_now()};
    ring *R = calloc(1, sizeof *R);
    if (!R)
        return lmc_err(LMC_ENOMEM, "out of memory");
    *R = (ring){.tok = tok, .sep = o->separator_id};
    pthread_mutex_init(&R->mu, NULL);
    pthread_cond_init(&R->cv, NULL);
    lmc_status s = ring_start(R, nt);
    if (s == LMC_OK)
        s = run(R, &k);
    ring_stop(R);
    pthread_mutex_destroy(&R->mu);
    pthread_cond_destroy(&R->cv);
    free(R);
    if (s == LMC_OK)
        s = tok_series_close(&train);
    if (s == LMC_OK)
        s = tok_series_close(&val);
    if (s == LMC_OK) {
        tok_series_remove_stale(&train);
        tok_series_remove_stale(&val);
    }
    tok_series_free(&train);
    tok_series_free(&val);
    if (r.st_open)
        tok_stream_close(&r.st);
    *stats = (lmc_tok_shard_stats){.docs = r.docs, .bytes = r.bytes, .train_tokens = train.total,
                                   .val_tokens = val.total, .train_shards = train.index, .val_shards = val.index,
                                   .token_bytes = tb, .seconds = lmc_now() - k.t0};
    return s;
}
