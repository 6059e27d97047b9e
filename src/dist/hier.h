/* hier.h: choosing the job's communicator from the ranks' devices
 * (hier.c): one job across chip vendors. */
#ifndef LMC_HIER_H
#define LMC_HIER_H

#include "dist/comm.h"

/* dist as lmc_comm_open takes it. Under "auto" in an mpirun, the ranks
 * exchange their --device: if every rank runs on the CPU (and
 * LMC_TEST_HIER_GROUPS is unset) the MPI communicator, exactly as
 * lmc_comm_open("auto"); otherwise the hierarchical communicator over
 * groups of one chip kind and host (hier.c). */
lmc_status lmc_comm_open_job(const char *dist, const char *device, lmc_comm **out);

/* The chip kind --device names: "cpu" (also for NULL and cpu:VARIANT),
 * "npu", "cuda". */
void lmc_hier_device_kind(const char *device, char *kind, size_t len);

/* Bytes this rank has sent in the hierarchical communicator's
 * reduce-scatters and all-gathers: inside its group (a run reduced to its
 * owner counts the run once on each other rank; a run broadcast by its
 * owner counts (group size - 1) x the run on the owner) and to other groups
 * (the messages' bytes). Fails on another communicator, or when the job
 * sums ranges (more than HX_RANKS ranks: counts stay 0). */
lmc_status lmc_hier_sent(lmc_comm *c, double *group, double *cross);

#endif
