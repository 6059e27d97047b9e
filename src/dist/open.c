/* open.c: choosing the communicator. */
#include "backend/backend.h"
#include "dist/comm.h"

#include <stdlib.h>
#include <string.h>

#ifdef LMC_HAVE_MPI
lmc_status lmc_comm_mpi(lmc_comm **out);
#endif
typedef lmc_status (*comm_open_fn)(lmc_comm **out);

static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

lmc_status lmc_comm_open(const char *kind, lmc_comm **out)
{
    *out = NULL;
    if (!kind || !strcmp(kind, "auto"))
        kind = launched_by_mpi() ? "mpi" : "single";
    if (!strcmp(kind, "single"))
        return lmc_comm_single(out);
    if (!strcmp(kind, "mpi")) {
#ifdef LMC_HAVE_MPI
        return lmc_comm_mpi(out);
#else
        return lmc_err(LMC_EUNSUPPORTED, "--dist mpi: this lmc was built without MPI (mpicc was not found)");
#endif
    }
    if (!strcmp(kind, "nccl")) {
        void *fn; /* NCCL lives in the CUDA plugin */
        LMC_TRY(lmc_cuda_plugin_symbol("lmc_comm_nccl", "--dist nccl", &fn));
        return ((comm_open_fn)fn)(out);
    }
    if (!strcmp(kind, "hccl")) {
        void *fn; /* HCCL lives in the Ascend plugin */
        LMC_TRY(lmc_plugin_symbol("npu", "lmc_comm_hccl", "--dist hccl", &fn));
        return ((comm_open_fn)fn)(out);
    }
    return lmc_err(LMC_EINVAL, "--dist: unknown communicator '%s' (use auto, single, mpi, nccl, hccl)", kind);
}
