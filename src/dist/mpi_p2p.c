/* mpi_p2p.c: the MPI communicator's point to point (pipeline stages).
 *
 * Sends and receives do not queue behind the collectives: send_start and
 * recv_start call MPI_Isend/MPI_Irecv on the caller's thread, beside the
 * communication thread that runs the collectives (mpi.c), which needs
 * MPI_THREAD_MULTIPLE (asked for at MPI_Init_thread; without it, only a
 * communicator that has no such thread runs them). p2p_wait polls MPI_Test
 * with short sleeps, so a waiting rank leaves its core to the compute thread
 * and the watchdog is checked. Open MPI moves a large (rendezvous) message
 * only while some thread is inside MPI, so most of one moves during
 * p2p_wait (or a collective running meanwhile).
 *
 * Faults: an MPI error, a receive shorter than posted, or a wait past the
 * watchdog becomes the communicator's fault, as a failed collective does:
 * every later call fails at once and closing the communicator ends the job.
 * A timed-out request keeps its slot (MPI may still write into its buffer).
 */
#define _GNU_SOURCE
#include "dist/mpi_internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define P2P_TAG 1400        /* apart from the collectives anyway (MPI matches them separately) */
#define P2P_NAP_NS 20000L   /* 20 us between tests */

static mpi_impl *impl_of(lmc_comm *c) { return c->impl; }

static const char *p2p_what(const p2p_req *r) { return r->send ? "send to" : "recv from"; }

/* Records a point-to-point failure as the communicator's fault: every later
 * collective and point-to-point call then fails at once. */
static lmc_status p2p_fault(lmc_comm *c, lmc_status code, const char *msg)
{
    mpi_impl *p = impl_of(c);
    pthread_mutex_lock(&p->mu);
    if (!p->faulted) {
        snprintf(p->fault, sizeof p->fault, "%s", msg);
        p->faulted = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return lmc_err(code, "%s", msg);
}

static lmc_status p2p_mpi_fail(lmc_comm *c, const p2p_req *r, int rc, const char *call)
{
    char s[MPI_MAX_ERROR_STRING] = "", msg[512];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    snprintf(msg, sizeof msg, "mpi %s rank %d (%zu bytes): %s failed: %s", p2p_what(r), r->peer, r->bytes, call, s);
    return p2p_fault(c, LMC_ECOMM, msg);
}

static int is_faulted(mpi_impl *p, char *why, size_t n)
{
    pthread_mutex_lock(&p->mu);
    int f = p->faulted;
    if (f)
        snprintf(why, n, "%s", p->fault);
    pthread_mutex_unlock(&p->mu);
    return f;
}

/* Checks made before anything is posted: they fail on this rank alone. */
static lmc_status p2p_check(lmc_comm *c, const char *what, size_t bytes, int peer)
{
    mpi_impl *p = impl_of(c);
    char why[512];
    if (peer < 0 || peer >= c->size || peer == c->rank)
        return lmc_err(LMC_EINVAL, "mpi %s rank %d: not another rank of this communicator (this is rank %d of %d)",
                       what, peer, c->rank, c->size);
    if (p->threaded && p->provided < MPI_THREAD_MULTIPLE)
        return lmc_err(LMC_EUNSUPPORTED, "mpi %s rank %d: point to point runs beside the communication thread, which "
                       "needs an MPI with MPI_THREAD_MULTIPLE support; this one provides level %d", what, peer,
                       p->provided);
    if (bytes / CHUNK > INT_MAX)
        return lmc_err(LMC_EUNSUPPORTED, "mpi %s rank %d: %zu bytes is more than MPI can count in pieces of %zu",
                       what, peer, bytes, CHUNK);
    if (is_faulted(p, why, sizeof why))
        return lmc_err(LMC_ECOMM, "mpi %s rank %d not started: an earlier operation failed: %s", what, peer, why);
    return LMC_OK;
}

static int p2p_post(mpi_impl *p, void *buf, size_t count, MPI_Datatype type, p2p_req *r, MPI_Request *rq,
                    const char **call)
{
    *call = r->send ? "MPI_Isend" : "MPI_Irecv";
    if (r->send)
        return MPI_Isend(buf, (int)count, type, r->peer, P2P_TAG, p->comm, rq);
    return MPI_Irecv(buf, (int)count, type, r->peer, P2P_TAG, p->comm, rq);
}

/* With p2p_mu held: posts r's pieces (both, in order, so that concurrent
 * posts to one peer cannot interleave them). */
static int p2p_post_pieces(mpi_impl *p, void *buf, p2p_req *r, const char **call)
{
    size_t whole = r->bytes / CHUNK, rest = r->bytes % CHUNK;
    int rc = MPI_SUCCESS;
    *call = "MPI_Type_contiguous";
    if (whole && !p->chunk_type_made) {
        rc = MPI_Type_contiguous((int)CHUNK, MPI_BYTE, &p->chunk_type);
        if (rc == MPI_SUCCESS)
            rc = MPI_Type_commit(&p->chunk_type);
        p->chunk_type_made = rc == MPI_SUCCESS;
    }
    if (rc == MPI_SUCCESS && whole)
        rc = p2p_post(p, buf, whole, p->chunk_type, r, &r->rq[0], call);
    if (rc == MPI_SUCCESS && rest)
        rc = p2p_post(p, (char *)buf + whole * CHUNK, rest, MPI_BYTE, r, &r->rq[1], call);
    return rc;
}

static lmc_status p2p_start(lmc_comm *c, void *buf, size_t bytes, int peer, int send, int *req)
{
    mpi_impl *p = impl_of(c);
    const char *what = send ? "send to" : "recv from";
    *req = -1;
    LMC_TRY(p2p_check(c, what, bytes, peer));
    pthread_mutex_lock(&p->p2p_mu);
    int slot = 0;
    while (slot < P2P_SLOTS && p->p2p[slot].used)
        slot++;
    if (slot == P2P_SLOTS) {
        pthread_mutex_unlock(&p->p2p_mu);
        return lmc_err(LMC_ECOMM, "mpi %s rank %d: %d point-to-point operations are in flight; wait for some "
                       "first", what, peer, P2P_SLOTS);
    }
    p2p_req *r = &p->p2p[slot];
    *r = (p2p_req){.rq = {MPI_REQUEST_NULL, MPI_REQUEST_NULL}, .used = 1, .send = send, .peer = peer, .bytes = bytes};
    const char *call = "";
    int rc = p2p_post_pieces(p, buf, r, &call);
    pthread_mutex_unlock(&p->p2p_mu);
    if (rc != MPI_SUCCESS) /* the slot stays taken: a piece may be in flight; the job is ending */
        return p2p_mpi_fail(c, r, rc, call);
    *req = slot;
    return LMC_OK;
}

lmc_status lmc_mpi_send_start(lmc_comm *c, const void *buf, size_t bytes, int peer, int *req)
{
    return p2p_start(c, (void *)buf, bytes, peer, 1, req);
}

lmc_status lmc_mpi_recv_start(lmc_comm *c, void *buf, size_t bytes, int peer, int *req)
{
    return p2p_start(c, buf, bytes, peer, 0, req);
}

/* Tests r's pieces; *done once both are complete. A receive must get as
 * many bytes as it was posted for: a shorter message is a pipeline whose
 * ranks disagree on a shape. */
static lmc_status p2p_test(lmc_comm *c, p2p_req *r, int *done)
{
    mpi_impl *p = impl_of(c);
    *done = 1;
    for (int i = 0; i < 2; i++) {
        if (r->rq[i] == MPI_REQUEST_NULL)
            continue;
        int flag = 0, n = 0;
        MPI_Status st;
        int rc = MPI_Test(&r->rq[i], &flag, &st);
        if (rc != MPI_SUCCESS)
            return p2p_mpi_fail(c, r, rc, "MPI_Test");
        if (!flag) {
            *done = 0;
            continue;
        }
        size_t want = i == 0 ? r->bytes / CHUNK : r->bytes % CHUNK;
        if (!r->send && (MPI_Get_count(&st, i == 0 ? p->chunk_type : MPI_BYTE, &n) != MPI_SUCCESS ||
                         n == MPI_UNDEFINED || (size_t)n != want)) {
            char msg[512];
            snprintf(msg, sizeof msg, "mpi recv from rank %d: expected %zu bytes but rank %d sent a shorter message "
                     "(the ranks disagree on the size)", r->peer, r->bytes, r->peer);
            return p2p_fault(c, LMC_ECOMM, msg);
        }
    }
    return LMC_OK;
}

lmc_status lmc_mpi_p2p_wait(lmc_comm *c, int req)
{
    mpi_impl *p = impl_of(c);
    pthread_mutex_lock(&p->p2p_mu);
    int used = req >= 0 && req < P2P_SLOTS && p->p2p[req].used;
    pthread_mutex_unlock(&p->p2p_mu);
    if (!used)
        return lmc_err(LMC_EINVAL, "mpi p2p_wait: request %d is not a send or receive in flight", req);
    p2p_req *r = &p->p2p[req];
    double t0 = lmc_now(), limit = lmc_mpi_timeout(c);
    char why[512], msg[512];
    for (;;) {
        int done = 0;
        LMC_TRY(p2p_test(c, r, &done));
        if (done)
            break;
        if (is_faulted(p, why, sizeof why))
            return lmc_err(LMC_ECOMM, "mpi %s rank %d (%zu bytes) not finished: an earlier operation failed: %s",
                           p2p_what(r), r->peer, r->bytes, why);
        double waited = lmc_now() - t0;
        if (limit > 0 && waited > limit) {
            snprintf(msg, sizeof msg, "mpi %s rank %d (%zu bytes) waited %.0f s for rank %d (the communication "
                     "watchdog): it is stuck, gone, or never posted the matching %s", p2p_what(r), r->peer, r->bytes,
                     waited, r->peer, r->send ? "receive" : "send");
            return p2p_fault(c, LMC_ECOMM, msg); /* the slot stays taken: MPI may still write into buf */
        }
        struct timespec ts = {0, P2P_NAP_NS};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&p->p2p_mu);
    r->used = 0;
    pthread_mutex_unlock(&p->p2p_mu);
    return LMC_OK;
}
