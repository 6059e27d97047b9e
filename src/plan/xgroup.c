/* xgroup.c: the gradient sync of a job whose replicas sit on pools of
 * different chips, as lmc train runs it (the hierarchical communicator,
 * src/dist/hier.c): each pool is a group; inside it the vendor's all-reduce
 * on its own links; each group's leader stages the sum through host memory
 * (device to host and back over the host link; none on the cpu chip); the
 * leaders all-reduce over the network; each leader broadcasts inside its
 * group. A mixed job updates each parameter on one rank (ZeRO-1), and the
 * hierarchical communicator moves its reduce-scatter and its all-gather
 * each as a whole sum: the sequence runs twice per step. The first (the
 * gradients) hides behind the last backward as the plain sync does; the
 * second (the updated parameters) follows the optimizer and is exposed.
 *
 * Host link: the catalogue has no field for it; the chip's network
 * bandwidth per chip stands in (a NIC per chip behind the same PCIe x16
 * switch as the chip: both about 25 GB/s per direction on A100 and 910B
 * nodes). Measured against this model only with CPU ranks
 * (bench/bench_xvendor.sh). */
#include "plan/internal.h"

#include <math.h>

/* One pool's part: its group's all-reduce and broadcast, and the leader's
 * staging. */
static double in_group_s(const lmc_plan_pool *p, int dp, const lmc_plan_layout *l, double bytes)
{
    double t = lmc_plan_collective_s(&p->chip, p->chips_per_node, 2, bytes, dp, l->tp) +
               lmc_plan_collective_s(&p->chip, p->chips_per_node, 1, bytes, dp, l->tp);
    if (!lmc_plan_chip_is_cpu(&p->chip))
        t += 2 * bytes / (p->chip.network_gbs * 1e9);
    return t;
}

double lmc_plan_xgroup_sync_s(const lmc_plan_job *job, const lmc_plan_pool *pools, const int *pool_dp,
                              const int *pool_mb, int n, const lmc_plan_layout *l, const lmc_plan_cut *cut,
                              const lmc_plan_mb_time *mb)
{
    double bytes = lmc_plan_max_stage_params(&job->model, cut) / l->tp * (job->bf16 ? 2 : 4);
    double group = 0, net_gbs = 1e300, lat = 0;
    int groups = 0;
    for (int i = 0; i < n; i++) {
        if (pool_mb[i] <= 0 || pool_dp[i] <= 0)
            continue;
        groups++;
        group = fmax(group, in_group_s(&pools[i], pool_dp[i], l, bytes));
        net_gbs = fmin(net_gbs, pools[i].chip.network_gbs);
        lat = fmax(lat, pools[i].chip.latency_us * 1e-6);
    }
    if (groups < 2)
        return 0;
    double once = group + lmc_plan_allreduce_s(bytes, groups, net_gbs * 1e9, lat);
    double hidden = job->dp_overlap * mb->compute * 2 / 3; /* the last backward, as lmc_plan_dp_sync_s */
    return (once > hidden ? once - hidden : 0) + once;
}
