/* core.h: status codes and error messages, atomic file io, rng, string
 * builder, JSON. Every other module builds on these. */
#ifndef LMC_CORE_H
#define LMC_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------- status and errors ---------- */

typedef enum {
    LMC_OK = 0,
    LMC_EINVAL,       /* bad argument or flag */
    LMC_EIO,          /* file could not be read or written */
    LMC_EFORMAT,      /* file content is malformed */
    LMC_ERANGE,       /* value out of range (token id, size, shape) */
    LMC_ENOMEM,       /* allocation failed */
    LMC_EUNSUPPORTED, /* valid request this build or backend cannot do */
    LMC_ECOMM,        /* communicator failure (peer died, MPI error) */
} lmc_status;

/* The last error message of the calling thread, like errno/dlerror: a library
 * function that fails returns a status and leaves a message here that names
 * the file, field and value. Thread-local so concurrent callers don't mix. */
lmc_status lmc_err(lmc_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("loading X: <msg>"). */
lmc_status lmc_err_wrap(lmc_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *lmc_errmsg(void);
const char *lmc_status_name(lmc_status s);

#define LMC_TRY(expr)                      \
    do {                                   \
        lmc_status lmc_try_s_ = (expr);    \
        if (lmc_try_s_ != LMC_OK)          \
            return lmc_try_s_;             \
    } while (0)

/* ---------- memory ---------- */

/* 64-byte aligned, zeroed; NULL on failure (sets the error message). */
void *lmc_alloc(size_t bytes, const char *what);
void lmc_free(void *p);
char *lmc_strdup(const char *s);
/* A growing array (realloc'd, elements of `elem` bytes): room for at least
 * `need` elements, the capacity doubling from 1024; 0 when out of memory
 * (*p and *cap unchanged, no message set). */
int lmc_reserve(void **p, size_t *cap, size_t need, size_t elem);

/* ---------- files ---------- */

/* Whole file into memory (NUL-terminated for convenience). */
lmc_status lmc_read_file(const char *path, char **data, size_t *len);

/* Read-only memory map of a whole file. */
typedef struct {
    const uint8_t *data;
    size_t size;
} lmc_mmap;
lmc_status lmc_mmap_open(lmc_mmap *m, const char *path);
void lmc_mmap_close(lmc_mmap *m);

/* Atomic writer: data goes to "<path>.tmp.<pid>", commit fsyncs it and
 * renames it over path (then fsyncs the directory); abort removes the temp
 * file. A crash at any point leaves either the old file or the new one. */
typedef struct {
    FILE *f;
    char *path;
    char *tmp;
    int failed;
} lmc_afile;
lmc_status lmc_afile_open(lmc_afile *af, const char *path);
lmc_status lmc_afile_write(lmc_afile *af, const void *data, size_t n);
/* Writes at a byte offset of the temp file (a writer filling a file whose
 * layout it knows in any order; every byte must be written before commit). */
lmc_status lmc_afile_write_at(lmc_afile *af, size_t offset, const void *data, size_t n);
lmc_status lmc_afile_commit(lmc_afile *af);
void lmc_afile_abort(lmc_afile *af);
lmc_status lmc_write_file_atomic(const char *path, const void *data, size_t n);
lmc_status lmc_fsync_dir(const char *dir);
lmc_status lmc_mkdir_p(const char *path);
/* Creates the directory a file path lies in (and its parents). */
lmc_status lmc_mkdir_parent(const char *path);
int lmc_path_exists(const char *path);
int lmc_is_dir(const char *path);
lmc_status lmc_rm_rf(const char *path);

/* Expand a glob (or a comma-separated list of globs) into sorted paths.
 * Zero matches is an error naming the pattern. */
lmc_status lmc_glob(const char *pattern, char ***paths, int *n);
void lmc_glob_free(char **paths, int n);

/* ---------- rng (xoshiro256**, seeded by splitmix64) ---------- */

typedef struct {
    uint64_t s[4];
} lmc_rng;
void lmc_rng_seed(lmc_rng *r, uint64_t seed);
uint64_t lmc_rng_u64(lmc_rng *r);
float lmc_rng_uniform(lmc_rng *r); /* [0,1) */
float lmc_rng_normal(lmc_rng *r);  /* N(0,1) */
uint64_t lmc_hash64(uint64_t x);   /* splitmix64 finaliser */

/* ---------- time ---------- */

double lmc_now(void); /* monotonic seconds */
double lmc_cpu_now(void); /* CPU seconds (user + system, all threads) this process has used */
size_t lmc_peak_rss(void); /* bytes */

/* ---------- string builder ---------- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} lmc_sb;
void lmc_sb_init(lmc_sb *b);
void lmc_sb_free(lmc_sb *b);
void lmc_sb_putc(lmc_sb *b, char c);
void lmc_sb_put(lmc_sb *b, const char *s, size_t n);
void lmc_sb_puts(lmc_sb *b, const char *s);
void lmc_sb_printf(lmc_sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void lmc_sb_vprintf(lmc_sb *b, const char *fmt, va_list ap);
/* JSON string literal with quotes and escapes; invalid UTF-8 becomes U+FFFD. */
void lmc_sb_json_str(lmc_sb *b, const char *s, size_t n);
/* Shortest decimal that round-trips a float (for JSON output). */
void lmc_sb_json_num(lmc_sb *b, double v);

/* ---------- JSON (parse into a tree; strings are NUL-terminated UTF-8) ---------- */

typedef enum {
    LMC_JSON_NULL,
    LMC_JSON_BOOL,
    LMC_JSON_NUM,
    LMC_JSON_STR,
    LMC_JSON_ARR,
    LMC_JSON_OBJ,
} lmc_json_type;

typedef struct lmc_json lmc_json;
struct lmc_json {
    lmc_json_type type;
    int n;           /* children (array items / object members) */
    double num;      /* NUM; BOOL as 0/1 */
    char *str;       /* STR value (len in slen) */
    size_t slen;
    char *key;       /* member name when inside an object */
    lmc_json *child; /* first child */
    lmc_json *next;  /* next sibling */
};

/* Parses n bytes; `what` names the source in error messages ("config.json").
 * Depth is limited; trailing garbage is an error. Free with lmc_json_free. */
lmc_status lmc_json_parse(const char *text, size_t n, const char *what, lmc_json **out);
void lmc_json_free(lmc_json *j);
lmc_json *lmc_json_get(const lmc_json *obj, const char *key);
lmc_json *lmc_json_at(const lmc_json *arr, int i);
/* Typed getters: LMC_OK, or an error naming what.key when present with the
 * wrong type; when absent they leave *out unchanged and return LMC_OK. */
lmc_status lmc_json_get_num(const lmc_json *obj, const char *key, const char *what, double *out);
lmc_status lmc_json_get_int(const lmc_json *obj, const char *key, const char *what, long long *out);
lmc_status lmc_json_get_bool(const lmc_json *obj, const char *key, const char *what, int *out);
lmc_status lmc_json_get_str(const lmc_json *obj, const char *key, const char *what, const char **out);

/* ---------- small parsing helpers ---------- */

/* Strict number parsing: the whole string must be a number; `what` names
 * the flag or field for the message. Accepts suffixes k/M/G/B/T for counts
 * in lmc_parse_count ("10B" tokens, "4k"). */
lmc_status lmc_parse_int(const char *s, const char *what, long long lo, long long hi, long long *out);
lmc_status lmc_parse_float(const char *s, const char *what, double lo, double hi, double *out);
lmc_status lmc_parse_count(const char *s, const char *what, double *out);

#endif
