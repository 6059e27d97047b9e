/* safetensors.h: reading and writing the safetensors format (8-byte
 * little-endian header length, JSON header, raw little-endian data). */
#ifndef LMC_SAFETENSORS_H
#define LMC_SAFETENSORS_H

#include "lmc/core.h"

#define LMC_ST_MAX_DIMS 8

typedef struct {
    char *name;
    char dtype[8]; /* "F32", "BF16", "F16", "I32", ... */
    int ndim;
    int64_t shape[LMC_ST_MAX_DIMS];
    size_t begin, end; /* byte range within the data section */
} lmc_st_tensor;

typedef struct {
    char *path;
    lmc_mmap map;
    const uint8_t *data; /* start of the data section */
    size_t data_len;
    lmc_st_tensor *t;
    int n;
    lmc_json *meta; /* "__metadata__" object or NULL */
    lmc_json *header;
} lmc_st_file;

/* Opens and validates the whole header: sizes, offsets within the file,
 * byte counts matching shape x dtype, known dtypes. */
lmc_status lmc_st_open(lmc_st_file *f, const char *path);
/* The same checks on a file's bytes in memory, which the caller keeps until
 * lmc_st_close; what names them in messages. */
lmc_status lmc_st_open_mem(lmc_st_file *f, const void *bytes, size_t size, const char *what);
void lmc_st_close(lmc_st_file *f);
const lmc_st_tensor *lmc_st_find(const lmc_st_file *f, const char *name);
size_t lmc_st_numel(const lmc_st_tensor *t);
/* Converts F32/BF16/F16 data to fp32 into dst (numel floats). */
lmc_status lmc_st_read_f32(const lmc_st_file *f, const lmc_st_tensor *t, float *dst);
/* The same for elements [first, first + count) of the flattened tensor:
 * only those bytes of the file are touched. */
lmc_status lmc_st_read_f32_range(const lmc_st_file *f, const lmc_st_tensor *t, size_t first, size_t count,
                                 float *dst);
/* Gives back the pages of t's bytes that reading mapped into this process
 * (the page cache keeps them; a later read faults them in again), so that a
 * reader going tensor by tensor holds one tensor's pages at a time, not the
 * whole file's, in its resident memory. */
void lmc_st_release(const lmc_st_file *f, const lmc_st_tensor *t);
/* Metadata string value or NULL. */
const char *lmc_st_meta(const lmc_st_file *f, const char *key);

typedef struct {
    const char *name;
    const char *dtype; /* "F32" or "BF16" */
    int ndim;
    int64_t shape[LMC_ST_MAX_DIMS];
    const void *data;
} lmc_st_entry;

/* Writes a file atomically. meta: NULL-terminated key/value string pairs. */
lmc_status lmc_st_write(const char *path, const lmc_st_entry *e, int n, const char *const *meta);
/* Appends to out what precedes the data of such a file (8-byte length, JSON
 * header padded to 8 bytes), with the entries' data laid out back to back in
 * entry order; *data_len gets the data section's size. e[i].data is unused,
 * so a streaming writer can emit the header before it has any tensor. */
lmc_status lmc_st_header(const lmc_st_entry *e, int n, const char *const *meta, lmc_sb *out, size_t *data_len);
size_t lmc_st_entry_bytes(const lmc_st_entry *e);

#endif
