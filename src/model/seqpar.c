/* seqpar.c: sequence parallelism's collectives (Megatron-LM). Rank r of a
 * tensor-parallel group holds rows [r N/tp, (r+1) N/tp) of the residual
 * stream; an all-gather makes the whole rows a column-parallel matmul needs,
 * and a reduce-scatter sums a row-parallel matmul's partial results while
 * leaving each rank its rows. A failure is kept in m->tp_status. */
#include "model/model.h"

static float *own_rows(const lmc_model *m, float *full, int N)
{
    return full + (size_t)m->tp_rank * lmc_model_rows(m, N) * m->cfg.dim;
}

void lmc_model_sp_gather(lmc_model *m, float *full, const float *shard, int N)
{
    size_t n = (size_t)lmc_model_rows(m, N) * m->cfg.dim;
    float *mine = own_rows(m, full, N);
    if (mine != shard)
        m->be->ops->copy(m->be, mine, shard, n * sizeof(float));
    double t0 = lmc_now();
    if (!m->tp_status)
        m->tp_status = m->tp_comm->ops->allgather(m->tp_comm, full, (size_t)N * m->cfg.dim);
    m->tp_s += lmc_now() - t0;
    m->tp_values += (double)N * m->cfg.dim;
}

void lmc_model_sp_scatter(lmc_model *m, float *full, float *shard, int N)
{
    size_t n = (size_t)lmc_model_rows(m, N) * m->cfg.dim;
    double t0 = lmc_now();
    if (!m->tp_status)
        m->tp_status = m->tp_comm->ops->reduce_scatter(m->tp_comm, full, (size_t)N * m->cfg.dim);
    m->tp_s += lmc_now() - t0;
    m->tp_values += (double)N * m->cfg.dim;
    float *mine = own_rows(m, full, N);
    if (mine != shard)
        m->be->ops->copy(m->be, shard, mine, n * sizeof(float));
}
