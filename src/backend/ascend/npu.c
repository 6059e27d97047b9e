/* npu.c: the Ascend backend's table, open, supports, peak FLOP/s and the
 * plugin's entry point (liblmc_npu.so: lmc_backend_plugin_entry).
 *
 * Open loads CANN's libraries (acl_load.c: a machine without them fails
 * here, naming the library and where it looked), sets the device, turns
 * deterministic computation on (aclrtCtxSetSysParamOpt), creates the stream
 * and the constant tensors some ops read: the compressed causal mask of
 * flash attention, a 1.0 for softmax sums, the pinned ring AdamW's
 * hyperparameters travel through. */
#include "backend/ascend/npu.h"
#include "backend/peaks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The process's last opened NPU backend, for the HCCL communicator
 * (src/dist/hccl.c): process state, as AscendCL's current device is. */
static lmc_backend *g_last;

lmc_backend *lmc_npu_last_backend(void) { return g_last; }

static void release(npu_state *s)
{
    const npu_api *a = s->api;
    if (!a)
        return;
    if (s->stream)
        a->aclrtSynchronizeStream(s->stream);
    void *dev[] = {s->ws, s->hp_dev, s->causal_mask, s->rope_cos, s->rope_sin, s->one};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
        if (dev[i])
            a->aclrtFree(dev[i]);
    for (int i = 0; i < s->n_chunk; i++)
        a->aclrtFree(s->chunk[i]);
    if (s->hp_host)
        a->aclrtFreeHost(s->hp_host);
    if (s->stream)
        a->aclrtDestroyStream(s->stream);
}

void npu_destroy(lmc_backend *be)
{
    if (g_last == be)
        g_last = NULL;
    release(npu_of(be));
    free(npu_of(be)->blocks);
    free(be->impl);
    free(be);
}

int npu_supports(lmc_backend *be, const lmc_op_query *q, char *why, size_t why_len)
{
    switch (q->op) {
    case LMC_OP_attention_forward:
    case LMC_OP_attention_backward:
    case LMC_OP_attention_decode:
        return npu_attention_ok(q->heads, q->kv_heads, q->head_size, why, why_len);
    case LMC_OP_rope:
        if (q->head_size % 2 || q->head_size >= 896 || q->n > NPU_ROPE_MAXPOS) {
            snprintf(why, why_len, "head size %d, %lld positions: aclnnRotaryPositionEmbedding needs an even head "
                     "size below 896, and lmc's tables cover %d positions", q->head_size, q->n, NPU_ROPE_MAXPOS);
            return 0;
        }
        return 1;
    case LMC_OP_matmul:
    case LMC_OP_cast:
        if (q->dtype == LMC_F32 || q->dtype == LMC_BF16)
            return 1;
        snprintf(why, why_len, "dtype %d is not supported (supported: fp32, bf16)", (int)q->dtype);
        return 0;
    case LMC_OP_linear:
        if (q->dtype == LMC_F32 || q->dtype == LMC_BF16 || q->dtype == LMC_I8)
            return 1;
        snprintf(why, why_len, "dtype %d is not supported (supported: fp32, bf16, int8)", (int)q->dtype);
        return 0;
    default:
        return 1;
    }
}

/* Vendor figures from the chip catalogue (share/chips.json, with its
 * sources: backend/peaks.h), by the name aclrtGetSocName gives
 * ("Ascend910B2"); an unknown part is taken as the common 910B. */
double npu_peak_flops(lmc_backend *be, lmc_dtype prec)
{
    double peak = lmc_chip_peak_named(npu_of(be)->soc, prec);
    return peak > 0 ? peak : lmc_chip_peak_named("910B", prec);
}

/* Every op npu_<op> this backend defines; the others stay NULL (npu.h):
 * xent_part (vocabulary parallelism), gather_rows, scatter_add_rows and
 * row_dot (mixtures of experts). */
static void fill_ops(lmc_backend_ops *o)
{
    memset(o, 0, sizeof *o);
#define NPU_FILL_(kind, name, ret, params) o->name = npu_##name;
    LMC_BACKEND_OPS(NPU_FILL_)
#undef NPU_FILL_
}

static int local_rank(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

/* The constants: causal mask (1 above the diagonal), 1.0f, the AdamW ring. */
static lmc_status make_constants(lmc_backend *be)
{
    npu_state *s = npu_of(be);
    const npu_api *a = s->api;
    size_t side = NPU_MASK_SIDE, mbytes = side * side;
    uint8_t *mask = malloc(mbytes);
    if (!mask)
        return lmc_err(LMC_ENOMEM, "%s: out of host memory for the causal mask", s->name);
    for (size_t i = 0; i < side; i++)
        for (size_t j = 0; j < side; j++)
            mask[i * side + j] = j > i;
    float consts[2] = {1.0f, 0.0f}; /* 1.0f, then int32 0 (the same bits as 0.0f) */
    acl_error e = a->aclrtMalloc((void **)&s->causal_mask, mbytes, NPU_MEM_MALLOC_HUGE_FIRST);
    if (e == NPU_ACL_SUCCESS)
        e = a->aclrtMemcpy(s->causal_mask, mbytes, mask, mbytes, NPU_MEMCPY_H2D);
    free(mask);
    if (e == NPU_ACL_SUCCESS)
        e = a->aclrtMalloc((void **)&s->one, 512, NPU_MEM_MALLOC_HUGE_FIRST);
    if (e == NPU_ACL_SUCCESS)
        e = a->aclrtMemcpy(s->one, sizeof consts, consts, sizeof consts, NPU_MEMCPY_H2D);
    if (e == NPU_ACL_SUCCESS)
        e = a->aclrtMallocHost((void **)&s->hp_host, NPU_HP_SLOTS * 8 * sizeof(float));
    if (e == NPU_ACL_SUCCESS)
        e = a->aclrtMalloc((void **)&s->hp_dev, NPU_HP_SLOTS * 8 * sizeof(float), NPU_MEM_MALLOC_HUGE_FIRST);
    if (e != NPU_ACL_SUCCESS)
        return lmc_err(LMC_ENOMEM, "%s: cannot set up the backend's constants: error %d: %s", s->name, e,
                       a->aclGetRecentErrMsg());
    return LMC_OK;
}

static lmc_status start_device(lmc_backend *be, int device)
{
    npu_state *s = npu_of(be);
    const npu_api *a = s->api;
    acl_error e = a->aclrtSetDevice(device);
    if (e == NPU_ACL_SUCCESS)
        e = a->aclrtCtxSetSysParamOpt(NPU_OPT_DETERMINISTIC, 1);
    if (e == NPU_ACL_SUCCESS)
        e = a->aclrtCreateStream(&s->stream);
    if (e != NPU_ACL_SUCCESS)
        return lmc_err(LMC_EIO, "%s: cannot initialise the device: error %d: %s", s->name, e, a->aclGetRecentErrMsg());
    const char *soc = a->aclrtGetSocName();
    snprintf(s->soc, sizeof s->soc, "%s", soc ? soc : "unknown");
    return make_constants(be);
}

static lmc_status npu_open(int index, int threads, lmc_backend **out)
{
    *out = NULL;
    const npu_api *a;
    lmc_status st = npu_api_load(&a);
    if (st != LMC_OK)
        return lmc_err_wrap(st, "npu");
    uint32_t count = 0;
    acl_error e = a->aclrtGetDeviceCount(&count);
    if (e != NPU_ACL_SUCCESS || count == 0)
        return lmc_err(LMC_EUNSUPPORTED, "npu: no Ascend device (aclrtGetDeviceCount: %u devices, error %d)", count, e);
    int device = index >= 0 ? index : local_rank() % (int)count;
    if (device >= (int)count)
        return lmc_err(LMC_EUNSUPPORTED, "npu:%d: no such device (found %u Ascend devices)", device, count);
    lmc_backend *be = calloc(1, sizeof *be);
    npu_state *s = calloc(1, sizeof *s);
    if (!be || !s) {
        free(be);
        free(s);
        return lmc_err(LMC_ENOMEM, "out of memory opening npu:%d", device);
    }
    s->api = a;
    s->device = device;
    snprintf(s->name, sizeof s->name, "npu:%d", device);
    fill_ops(&s->ops);
    be->ops = &s->ops;
    be->name = s->name;
    be->threads = 1;
    be->impl = s;
    be->host_memory = 0;
    be->deterministic = 1; /* ACL_OPT_DETERMINISTIC set at open */
    if ((st = start_device(be, device)) != LMC_OK) {
        release(s);
        free(s);
        free(be);
        return st;
    }
    g_last = be;
    *out = be;
    return LMC_OK;
}

/* The devices here, one line; with none (or no CANN), why. */
static lmc_status npu_probe(int *count, char *desc, size_t len)
{
    const npu_api *a;
    *count = 0;
    desc[0] = 0;
    lmc_status st = npu_api_load(&a);
    if (st != LMC_OK)
        return st;
    uint32_t n = 0;
    acl_error e = a->aclrtGetDeviceCount(&n);
    if (e != NPU_ACL_SUCCESS || n == 0)
        return lmc_err(LMC_EUNSUPPORTED, "no Ascend device: aclrtGetDeviceCount: %u devices (error %d)", n, e);
    const char *soc = a->aclrtGetSocName();
    snprintf(desc, len, "npu:0..%u %s", n - 1, soc ? soc : "(SoC name unknown before a device is set)");
    *count = (int)n;
    return LMC_OK;
}

static const lmc_backend_plugin npu_plugin = {LMC_BACKEND_ABI, sizeof(lmc_backend_ops), "npu",
                                              "Huawei Ascend NPUs (AscendCL, aclnn)", npu_open, npu_probe};

const lmc_backend_plugin *lmc_backend_plugin_entry(void) { return &npu_plugin; }
