/* backend.c: opening a backend by device name, the ops table's names and
 * kinds, errors that reach the caller, and asking what a backend supports. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------- the ops table ---------- */

static const char *const op_names[] = {
#define LMC_OP_NAME_(kind, name, ret, params) #name,
    LMC_BACKEND_OPS(LMC_OP_NAME_)
#undef LMC_OP_NAME_
};

static const lmc_op_kind op_kinds[] = {
#define LMC_OP_KIND_(kind, name, ret, params) LMC_OPK_##kind,
    LMC_BACKEND_OPS(LMC_OP_KIND_)
#undef LMC_OP_KIND_
};

const char *lmc_op_name(lmc_op op) { return op >= 0 && op < LMC_OP_COUNT ? op_names[op] : "unknown op"; }

lmc_op lmc_op_from_name(const char *name)
{
    for (int i = 0; name && i < LMC_OP_COUNT; i++)
        if (!strcmp(op_names[i], name))
            return (lmc_op)i;
    return LMC_OP_COUNT;
}

lmc_op_kind lmc_op_kind_of(lmc_op op) { return op >= 0 && op < LMC_OP_COUNT ? op_kinds[op] : LMC_OPK_OPT; }

int lmc_backend_has_op(const lmc_backend *be, lmc_op op)
{
    const lmc_backend_ops *o = be->ops;
    switch (op) {
#define LMC_OP_HAS_(kind, name, ret, params) \
    case LMC_OP_##name:                      \
        return o->name != NULL;
        LMC_BACKEND_OPS(LMC_OP_HAS_)
#undef LMC_OP_HAS_
    default:
        return 0;
    }
}

lmc_status lmc_backend_ops_check(const lmc_backend *be)
{
    for (int i = 0; i < LMC_OP_COUNT; i++)
        if (op_kinds[i] == LMC_OPK_CORE && !lmc_backend_has_op(be, (lmc_op)i))
            return lmc_err(LMC_EUNSUPPORTED, "backend %s leaves the required op '%s' empty", be->name, op_names[i]);
    return LMC_OK;
}

/* ---------- errors ---------- */

void lmc_backend_fail(lmc_backend *be, lmc_op op, lmc_status code, const char *fmt, ...)
{
    int free_slot = 0; /* the first error wins, whichever thread records it */
    if (!__atomic_compare_exchange_n(&be->err_claimed, &free_slot, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(be->err_msg, sizeof be->err_msg, "%s: %s: %s", be->name, lmc_op_name(op), detail);
    __atomic_store_n(&be->err_code, code != LMC_OK ? code : LMC_EIO, __ATOMIC_RELEASE);
}

lmc_status lmc_backend_pending(const lmc_backend *be)
{
    lmc_status code = __atomic_load_n(&be->err_code, __ATOMIC_ACQUIRE);
    return code != LMC_OK ? lmc_err(code, "%s", be->err_msg) : LMC_OK;
}

const char *lmc_backend_error(const lmc_backend *be)
{
    return __atomic_load_n(&be->err_code, __ATOMIC_ACQUIRE) != LMC_OK ? be->err_msg : NULL;
}

lmc_status lmc_backend_check(lmc_backend *be)
{
    lmc_status s = be->ops->sync(be);
    lmc_status p = lmc_backend_pending(be);
    if (p == LMC_OK)
        return s;
    __atomic_store_n(&be->err_code, LMC_OK, __ATOMIC_RELEASE);
    __atomic_store_n(&be->err_claimed, 0, __ATOMIC_RELEASE);
    return p;
}

/* ---------- supports ---------- */

lmc_status lmc_backend_supports(lmc_backend *be, const lmc_op_query *q)
{
    if (q->op < 0 || q->op >= LMC_OP_COUNT)
        return lmc_err(LMC_EINVAL, "backend %s: no op has id %d", be->name, (int)q->op);
    if (!lmc_backend_has_op(be, q->op))
        return lmc_err(LMC_EUNSUPPORTED, "backend %s has no '%s' op", be->name, op_names[q->op]);
    char why[256] = "not supported";
    if (be->ops->supports(be, q, why, sizeof why))
        return LMC_OK;
    return lmc_err(LMC_EUNSUPPORTED, "backend %s: %s: %s", be->name, op_names[q->op], why);
}

/* ---------- the backends lmc knows ---------- */

static const struct {
    const char *name, *hint;
} known[] = {
    {"cpu", "built in"},
    {"cuda", "cuda is the NVIDIA GPU backend, built by make where nvcc is found"},
    {"npu", "npu is the Huawei Ascend backend (CANN)"},
};
#define N_KNOWN (int)(sizeof known / sizeof known[0])

int lmc_backend_names(char (*names)[32], int max)
{
    int n = 0;
    for (int i = 0; i < N_KNOWN && n < max; i++)
        snprintf(names[n++], sizeof names[0], "%s", known[i].name);
    return lmc_plugin_scan(names, n, max);
}

static lmc_status cpu_open(int index, int threads, lmc_backend **out)
{
    return lmc_cpu_backend_open(threads, "auto", out);
}

static lmc_status cpu_probe(int *count, char *desc, size_t len)
{
    const char *isas[4];
    int n = lmc_cpu_isa_list(isas, 4);
    size_t at = (size_t)snprintf(desc, len, "cpu: %ld cores; kernels:", sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(desc + at, len - at, " %s", isas[i]);
    *count = 1;
    return LMC_OK;
}

static const lmc_backend_plugin cpu_plugin = {LMC_BACKEND_ABI, sizeof(lmc_backend_ops), "cpu",
                                              "the host's cores (built in)", cpu_open, cpu_probe};

#ifdef LMC_HAVE_CUDA /* linked in statically: the host emulation build (tests/gpu/emu) */
const lmc_backend_plugin *lmc_backend_plugin_entry(void);
#endif

lmc_status lmc_backend_find(const char *name, const lmc_backend_plugin **out)
{
    *out = NULL;
    if (!strcmp(name, "cpu")) {
        *out = &cpu_plugin;
        return LMC_OK;
    }
#ifdef LMC_HAVE_CUDA
    if (!strcmp(name, "cuda")) {
        *out = lmc_backend_plugin_entry();
        return LMC_OK;
    }
#endif
    return lmc_plugin_backend(name, out);
}

/* lmc_backend_find's error, with what lmc knows of that name when no
 * library was found (a library found but refused speaks for itself). */
static lmc_status not_found(const char *device, const char *name, lmc_status s)
{
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", lmc_errmsg());
    if (s != LMC_EUNSUPPORTED)
        return lmc_err(s, "--device %s: %s", device, msg);
    for (int i = 0; i < N_KNOWN; i++)
        if (!strcmp(name, known[i].name))
            return lmc_err(s, "--device %s: %s; %s", device, msg, known[i].hint);
    return lmc_err(s, "--device: unknown device '%s' (lmc knows cpu, cuda, npu; `lmc devices` lists them): %s",
                   device, msg);
}

/* ---------- opening ---------- */

/* "cpu:" then, comma-separated, an instruction-set path to force (avx512,
 * avx512-nodot, avx2, c) and kc=N (matmuls sum k in blocks of at most N):
 * the same numbers computed another way, to measure float noise. */
static lmc_status cpu_variant(const char *device, int threads, lmc_backend **out)
{
    char isa[32] = "auto", spec[128];
    int kc = 0;
    snprintf(spec, sizeof spec, "%s", device + 4);
    for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
        if (!strncmp(tok, "kc=", 3)) {
            char *end;
            long v = strtol(tok + 3, &end, 10);
            if (*end || v < 2 || v > 4096)
                return lmc_err(LMC_EINVAL, "--device %s: kc=%s must be a whole number in [2, 4096]", device, tok + 3);
            kc = (int)v;
        } else {
            snprintf(isa, sizeof isa, "%s", tok);
        }
    }
    lmc_status s = lmc_cpu_backend_open(threads, isa, out);
    if (s)
        return lmc_err_wrap(s, "--device %s", device);
    lmc_cpu_set_kc_cap(*out, kc);
    return LMC_OK;
}

/* NAME[:N] through the backend's plugin descriptor. */
static lmc_status open_named(const char *device, int threads, lmc_backend **out)
{
    char name[64];
    const char *colon = strchr(device, ':');
    size_t len = colon ? (size_t)(colon - device) : strlen(device);
    if (len == 0 || len >= sizeof name)
        return lmc_err(LMC_EINVAL, "--device '%s': give a backend name, as NAME or NAME:N (lmc devices lists them)",
                       device);
    snprintf(name, sizeof name, "%.*s", (int)len, device);
    long long index = -1; /* no :N: the device of this process's local rank */
    if (colon) {
        char what[96];
        snprintf(what, sizeof what, "--device %s: the device number", device);
        LMC_TRY(lmc_parse_int(colon + 1, what, 0, 1023, &index));
    }
    const lmc_backend_plugin *p;
    lmc_status s = lmc_backend_find(name, &p);
    return s ? not_found(device, name, s) : p->open((int)index, threads, out); /* open's errors name the device */
}

lmc_status lmc_backend_open(const char *device, int threads, lmc_backend **out)
{
    *out = NULL;
    lmc_status s;
    if (!device || !strcmp(device, "cpu"))
        s = lmc_cpu_backend_open(threads, "auto", out);
    else if (!strncmp(device, "cpu:", 4))
        s = cpu_variant(device, threads, out);
    else
        s = open_named(device, threads, out);
    if (s == LMC_OK && (s = lmc_backend_ops_check(*out)) != LMC_OK) {
        if ((*out)->ops->destroy)
            lmc_backend_close(*out);
        *out = NULL;
    }
    return s;
}

void lmc_backend_close(lmc_backend *be)
{
    if (be)
        be->ops->destroy(be);
}
