/* stages.c: where a pipeline cuts the layers. */
#include "lmc/model.h"

#include <stdlib.h>
#include <string.h>

/* Forward matmul flops per token of one layer and of the head. */
static void stage_costs(const lmc_model_config *c, int T, double *layer, double *head)
{
    double C = c->dim, L = c->n_layer;
    double per_layer = (lmc_config_matmul_params(c) - (double)c->vocab * C) / L;
    *layer = 2 * per_layer + 2.0 * T * C; /* the projections, and causal attention's scores and sums */
    *head = 2.0 * C * c->vocab_padded;
}

static lmc_status parse_cut(const lmc_model_config *c, int pp, const char *spec, int *begin)
{
    const char *p = spec;
    int sum = 0, s = 0;
    while (*p && s < pp) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n < 1 || (*end && *end != ','))
            return lmc_err(LMC_EINVAL, "--pp-layers %s: '%s' is not a layer count >= 1", spec, p);
        begin[s++] = sum;
        sum += (int)n;
        p = *end ? end + 1 : end;
    }
    if (s != pp || *p)
        return lmc_err(LMC_EINVAL, "--pp-layers %s: give %d counts, one per stage of --pp %d", spec, pp, pp);
    if (sum != c->n_layer)
        return lmc_err(LMC_EINVAL, "--pp-layers %s: the counts sum to %d but the model has %d layers", spec, sum,
                       c->n_layer);
    begin[pp] = sum;
    return LMC_OK;
}

/* best[s][l]: the smallest largest-stage cost placing layers [0, l) on
 * stages [0, s); the last stage also pays the head. */
static void balance(const lmc_model_config *c, int T, int pp, int *begin)
{
    int L = c->n_layer;
    double layer, head;
    stage_costs(c, T, &layer, &head);
    double *best = malloc((size_t)(pp + 1) * (L + 1) * sizeof *best);
    int *from = malloc((size_t)(pp + 1) * (L + 1) * sizeof *from);
#define AT(a, s, l) a[(size_t)(s) * (L + 1) + (l)]
    for (int l = 0; l <= L; l++)
        AT(best, 0, l) = l ? 1e300 : 0;
    for (int s = 1; s <= pp; s++)
        for (int l = 0; l <= L; l++) {
            AT(best, s, l) = 1e300;
            for (int k = s - 1; k < l; k++) { /* stage s-1 holds layers [k, l) */
                double cost = (l - k) * layer + (s == pp ? head : 0);
                double worst = AT(best, s - 1, k) > cost ? AT(best, s - 1, k) : cost;
                if (worst < AT(best, s, l)) {
                    AT(best, s, l) = worst;
                    AT(from, s, l) = k;
                }
            }
        }
    begin[pp] = L;
    for (int s = pp; s >= 1; s--)
        begin[s - 1] = AT(from, s, begin[s]);
#undef AT
    free(best);
    free(from);
}

lmc_status lmc_pipeline_cut(const lmc_model_config *c, int T, int pp, const char *spec, int *begin)
{
    if (pp < 1 || pp > c->n_layer)
        return lmc_err(LMC_EINVAL, "--pp %d: a model of %d layers has 1 to %d pipeline stages (each holds at least "
                       "one layer)", pp, c->n_layer, c->n_layer);
    if (spec && *spec)
        return parse_cut(c, pp, spec, begin);
    balance(c, T, pp, begin);
    return LMC_OK;
}
