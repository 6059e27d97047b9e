/* peaks.c: peak FLOP/s per precision from the chip catalogue, for lmc plan
 * (src/plan/cost.c) and the backends' MFU (peak_flops of cuda, npu). */
#include "backend/peaks.h"

#include <strings.h>

int lmc_chip_f32_tf32(const lmc_plan_chip *c) { return !strcasecmp(c->vendor, "NVIDIA") ? LMC_CUDA_F32_TF32 : 0; }

double lmc_chip_peak(const lmc_plan_chip *c, lmc_dtype prec)
{
    if (prec == LMC_BF16)
        return c->bf16_tflops * 1e12;
    return (lmc_chip_f32_tf32(c) && c->tf32_tflops > 0 ? c->tf32_tflops : c->fp32_tflops) * 1e12;
}

double lmc_chip_peak_named(const char *name, lmc_dtype prec)
{
    lmc_plan_catalog cat = {0};
    double peak = 0;
    if (lmc_plan_catalog_load_default(&cat) == LMC_OK) {
        const lmc_plan_chip *c = lmc_plan_catalog_find(&cat, name);
        peak = c ? lmc_chip_peak(c, prec) : 0;
    }
    lmc_plan_catalog_free(&cat);
    return peak;
}
