/* route.c: a mixture of experts' routing, on the host (the logits are N x E
 * numbers per layer): each token's top-k experts and weights, the rows in
 * expert order, and the backward of the weights and of the load-balancing
 * loss's softmax to the logits. As Hugging Face computes it: softmax over
 * the experts, the top k, their probabilities divided by their sum
 * (Mixtral); or sigmoid scores, the top k, divided by their sum
 * (DeepSeek-V3, without its scaling factor; its balancing bias, when set,
 * only chooses the k). Ties go to the lower expert index. */
#include "model/moe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lmc_status lmc_route_alloc(lmc_route *r, int N, int E, int k)
{
    size_t R = (size_t)N * k, NE = (size_t)N * E;
    memset(r, 0, sizeof *r);
    r->sel = malloc(R * sizeof(int));
    r->prob = malloc(NE * sizeof(float));
    r->soft = malloc(NE * sizeof(float));
    r->tok = malloc(R * sizeof(int));
    r->w = malloc(R * sizeof(float));
    r->row = malloc(R * sizeof(int));
    r->off = calloc((size_t)E + 1, sizeof(int));
    r->psum = calloc((size_t)E, sizeof(double));
    r->fill = calloc((size_t)E, sizeof(int));
    r->pick = calloc((size_t)E, sizeof(float));
    if (!r->sel || !r->prob || !r->soft || !r->tok || !r->w || !r->row || !r->off || !r->psum || !r->fill ||
        !r->pick) {
        lmc_route_free(r);
        return lmc_err(LMC_ENOMEM, "out of memory for the routing of %d tokens to %d experts", N, E);
    }
    return LMC_OK;
}

void lmc_route_free(lmc_route *r)
{
    void *p[] = {r->sel, r->prob, r->soft, r->tok, r->w, r->row, r->off, r->psum, r->fill, r->pick};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        free(p[i]);
    memset(r, 0, sizeof *r);
}

/* soft = softmax(z); prob = soft, or sigmoid(z) */
static void scores(const float *z, int E, lmc_router_kind kind, float *prob, float *soft)
{
    float mx = z[0];
    for (int e = 1; e < E; e++)
        mx = z[e] > mx ? z[e] : mx;
    double sum = 0;
    for (int e = 0; e < E; e++)
        sum += exp((double)z[e] - mx);
    for (int e = 0; e < E; e++) {
        soft[e] = (float)(exp((double)z[e] - mx) / sum);
        prob[e] = kind == LMC_ROUTER_SIGMOID ? (float)(1.0 / (1.0 + exp(-(double)z[e]))) : soft[e];
    }
}

/* sel (k) = the k largest of p, largest first; an equal score does not
 * pass one already chosen, so ties go to the lower index */
static void top_k(const float *p, int E, int k, int *sel)
{
    int n = 0;
    for (int e = 0; e < E; e++) {
        int at = n;
        while (at > 0 && p[e] > p[sel[at - 1]])
            at--;
        if (at >= k)
            continue;
        for (int j = n < k ? n : k - 1; j > at; j--)
            sel[j] = sel[j - 1];
        sel[at] = e;
        n += n < k;
    }
}

void lmc_route_forward(lmc_route *r, const float *logits, int N, int E, int k, lmc_router_kind kind)
{
    int *count = r->off + 1;
    r->N = N;
    memset(r->off, 0, ((size_t)E + 1) * sizeof(int));
    memset(r->psum, 0, (size_t)E * sizeof(double));
    for (int i = 0; i < N; i++) {
        float *p = r->prob + (size_t)i * E, *s = r->soft + (size_t)i * E;
        int *sel = r->sel + (size_t)i * k;
        scores(logits + (size_t)i * E, E, kind, p, s);
        for (int e = 0; r->bias && e < E; e++) /* the balancing bias chooses, the scores weigh */
            r->pick[e] = p[e] + r->bias[e];
        top_k(r->bias ? r->pick : p, E, k, sel);
        for (int e = 0; e < E; e++)
            r->psum[e] += s[e];
        for (int j = 0; j < k; j++)
            count[sel[j]]++;
    }
    for (int e = 0; e < E; e++) /* off[e + 1] = rows of experts <= e */
        r->off[e + 1] += r->off[e];
    int *fill = r->fill; /* each expert's next row */
    memcpy(fill, r->off, (size_t)E * sizeof(int));
    for (int i = 0; i < N; i++) {
        const int *sel = r->sel + (size_t)i * k;
        const float *p = r->prob + (size_t)i * E;
        float sum = 0;
        for (int j = 0; j < k; j++)
            sum += p[sel[j]];
        for (int j = 0; j < k; j++) {
            int row = fill[sel[j]]++;
            r->tok[row] = i;
            r->w[row] = p[sel[j]] / sum;
            r->row[(size_t)i * k + j] = row;
        }
    }
}

void lmc_route_backward(const lmc_route *r, int E, int k, lmc_router_kind kind, const float *dw, const float *aux_c,
                        float *dz)
{
    memset(dz, 0, (size_t)r->N * E * sizeof(float));
    for (int i = 0; i < r->N; i++) {
        const int *sel = r->sel + (size_t)i * k, *row = r->row + (size_t)i * k;
        const float *p = r->prob + (size_t)i * E, *s = r->soft + (size_t)i * E;
        float *d = dz + (size_t)i * E;
        double dot = 0, sum = 0; /* sum_j w_j dw_j; the chosen scores' sum */
        for (int j = 0; j < k; j++) {
            dot += (double)r->w[row[j]] * dw[row[j]];
            sum += p[sel[j]];
        }
        for (int j = 0; j < k; j++) {
            double g = dw[row[j]] - dot; /* softmax over the chosen: w_j (dw_j - dot) */
            int e = sel[j];
            d[e] = kind == LMC_ROUTER_SIGMOID ? (float)(g / sum * p[e] * (1.0 - p[e])) : (float)(r->w[row[j]] * g);
        }
        if (!aux_c)
            continue;
        double sc = 0; /* the load-balancing loss through its softmax: s (c - s . c) */
        for (int e = 0; e < E; e++)
            sc += (double)s[e] * aux_c[e];
        for (int e = 0; e < E; e++)
            d[e] += (float)(s[e] * (aux_c[e] - sc));
    }
}
