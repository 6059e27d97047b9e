/* metrics.c: counters and latency histograms, rendered in Prometheus'
 * text format for GET /metrics. */
#include "serve/serve_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const double bounds[LAT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,    1,     2.5,  5,     10,  30};

static void hist_init(srv_hist *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->le, bounds, sizeof bounds);
}

void srv_metrics_init(srv_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->latency);
    hist_init(&m->ttft);
    hist_init(&m->step);
    m->started = (double)time(NULL);
}

static int status_class(int status)
{
    return status < 300 ? 0 : status == 400 ? 1 : status == 401 ? 2 : status == 404 || status == 405 ? 3
           : status < 500 ? 4 : 5;
}

static const char *const class_names[6] = {"2xx", "400", "401", "404", "413_429", "5xx"};
static const char *const ep_names[EP_COUNT] = {"completions", "chat_completions", "models", "health", "metrics",
                                               "other"};

void srv_metrics_request(srv_metrics *m, srv_endpoint ep, int status)
{
    pthread_mutex_lock(&m->mu);
    m->requests[ep][status_class(status)]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_hist_add(srv_metrics *m, srv_hist *h, double v)
{
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < LAT_BUCKETS && v > h->le[i])
        i++;
    h->count[i]++;
    h->sum += v;
    h->n++;
    pthread_mutex_unlock(&m->mu);
}

static void hist_render(lmc_sb *out, const char *name, const char *help, const srv_hist *h)
{
    lmc_sb_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int i = 0; i < LAT_BUCKETS; i++) {
        cum += h->count[i];
        lmc_sb_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], cum);
    }
    cum += h->count[LAT_BUCKETS];
    lmc_sb_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, cum, name, h->sum, name,
                  h->n);
}

static double rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

void srv_metrics_render(srv_metrics *m, lmc_sb *out, int queued, int running, int slots)
{
    pthread_mutex_lock(&m->mu);
    lmc_sb_puts(out, "# HELP lmc_requests_total HTTP requests by endpoint and status.\n"
                     "# TYPE lmc_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int c = 0; c < 6; c++)
            if (m->requests[e][c])
                lmc_sb_printf(out, "lmc_requests_total{endpoint=\"%s\",status=\"%s\"} %llu\n", ep_names[e],
                              class_names[c], m->requests[e][c]);
    lmc_sb_printf(out,
                  "# HELP lmc_prompt_tokens_total Prompt tokens of accepted requests.\n"
                  "# TYPE lmc_prompt_tokens_total counter\nlmc_prompt_tokens_total %llu\n"
                  "# HELP lmc_completion_tokens_total Generated tokens.\n"
                  "# TYPE lmc_completion_tokens_total counter\nlmc_completion_tokens_total %llu\n"
                  "# HELP lmc_requests_cancelled_total Requests dropped: client gone or shutdown.\n"
                  "# TYPE lmc_requests_cancelled_total counter\nlmc_requests_cancelled_total %llu\n"
                  "# HELP lmc_engine_steps_total Engine iterations (prefill and/or one decode step).\n"
                  "# TYPE lmc_engine_steps_total counter\nlmc_engine_steps_total %llu\n"
                  "# HELP lmc_engine_step_rows_total Sequences decoded, summed over steps (/ steps = batch).\n"
                  "# TYPE lmc_engine_step_rows_total counter\nlmc_engine_step_rows_total %llu\n"
                  "# HELP lmc_queue_depth Requests waiting for a slot.\n"
                  "# TYPE lmc_queue_depth gauge\nlmc_queue_depth %d\n"
                  "# HELP lmc_requests_running Requests holding a slot.\n"
                  "# TYPE lmc_requests_running gauge\nlmc_requests_running %d\n"
                  "# HELP lmc_slots Sequences decoded together at most.\n"
                  "# TYPE lmc_slots gauge\nlmc_slots %d\n"
                  "# HELP process_resident_memory_bytes Resident memory.\n"
                  "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
                  "# HELP process_start_time_seconds Start time, seconds since the epoch.\n"
                  "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.0f\n",
                  m->prompt_tokens, m->completion_tokens, m->cancelled, m->decode_steps, m->decode_rows, queued,
                  running, slots, rss_bytes(), m->started);
    hist_render(out, "lmc_request_duration_seconds", "Time from request arrival to its last byte of output.",
                &m->latency);
    hist_render(out, "lmc_time_to_first_token_seconds", "Time from request arrival to its first token.", &m->ttft);
    hist_render(out, "lmc_engine_step_seconds", "Duration of one engine iteration.", &m->step);
    pthread_mutex_unlock(&m->mu);
}
