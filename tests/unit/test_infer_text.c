/* test_infer_text.c: the host side of generation: sampling (top-p by
 * quickselect against the sort-based definition, top-k, greedy ties,
 * penalties) and the text stream (stop strings across token boundaries,
 * whole UTF-8 characters only). */
#include "lmc/infer.h"
#include "lmc/sampler.h"
#include "test.h"

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The definition: sort, accumulate to top_p, keep p >= the last kept. */
static int ref_sample(const float *logits, int V, const lmc_sampling *s, lmc_rng *rng)
{
    float *p = malloc((size_t)V * 4), *tmp = malloc((size_t)V * 4);
    float cut = -INFINITY;
    if (s->top_k > 0 && s->top_k < V) {
        memcpy(tmp, logits, (size_t)V * 4);
        qsort(tmp, (size_t)V, 4, cmp_desc);
        cut = tmp[s->top_k - 1];
    }
    float mx = logits[0];
    for (int i = 1; i < V; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        p[i] = logits[i] >= cut ? expf((logits[i] - mx) / s->temperature) : 0.0f;
        sum += p[i];
    }
    if (s->top_p > 0 && s->top_p < 1) {
        memcpy(tmp, p, (size_t)V * 4);
        qsort(tmp, (size_t)V, 4, cmp_desc);
        double acc = 0, thresh = 0;
        for (int i = 0; i < V; i++) {
            acc += tmp[i];
            thresh = tmp[i];
            if (acc >= s->top_p * sum)
                break;
        }
        sum = 0;
        for (int i = 0; i < V; i++) {
            if (p[i] < thresh)
                p[i] = 0;
            sum += p[i];
        }
    }
    double r = lmc_rng_uniform(rng) * sum, acc = 0;
    int last = 0, got = -1;
    for (int i = 0; i < V && got < 0; i++) {
        if (p[i] <= 0)
            continue;
        acc += p[i];
        last = i;
        if (acc > r)
            got = i;
    }
    free(p), free(tmp);
    return got >= 0 ? got : last;
}

static void test_sampling_matches_definition(void)
{
    lmc_rng g;
    lmc_rng_seed(&g, 5);
    int V = 3000, mismatches = 0;
    float *logits = malloc((size_t)V * 4), *scratch = malloc((size_t)V * 8);
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < V; i++) /* ties on purpose: values on a coarse grid */
            logits[i] = (float)((int)(lmc_rng_normal(&g) * (trial % 3 == 0 ? 2 : 20))) / 4.0f;
        lmc_sampling s = {.temperature = 0.3f + (trial % 7) * 0.3f, .top_k = trial % 4 == 0 ? 50 : 0,
                          .top_p = trial % 5 == 0 ? 1.0f : 0.05f + (trial % 9) * 0.1f};
        lmc_rng a, b;
        lmc_rng_seed(&a, (uint64_t)trial);
        lmc_rng_seed(&b, (uint64_t)trial);
        for (int k = 0; k < 5; k++)
            mismatches += lmc_sample_token(logits, V, &s, &a, scratch) != ref_sample(logits, V, &s, &b);
    }
    CHECK_MSG(mismatches == 0, "%d of 1000 samples differ from the sort-based definition", mismatches);
    free(logits), free(scratch);
}

static void test_greedy_and_topk(void)
{
    float l[6] = {1, 3, 3, -1, 2, 0}, scratch[12];
    lmc_rng r;
    lmc_rng_seed(&r, 1);
    lmc_sampling g = {0};
    CHECK(lmc_sample_token(l, 6, &g, &r, scratch) == 1); /* ties: the lowest id */
    lmc_sampling k1 = {.temperature = 5, .top_k = 1, .top_p = 1};
    for (int i = 0; i < 50; i++) {
        int t = lmc_sample_token(l, 6, &k1, &r, scratch);
        CHECK(t == 1 || t == 2); /* top-1 keeps both tied values */
    }
    lmc_sampling p = {.temperature = 1, .top_p = 0.01f};
    float m[4] = {0, 10, 0, 0};
    for (int i = 0; i < 20; i++)
        CHECK(lmc_sample_token(m, 4, &p, &r, scratch) == 1);
}

static void test_penalties(void)
{
    float l[5] = {2, -2, 1, 0.5f, 3};
    int ids[6] = {0, 1, 2, 2, 4, 4}, counts[5] = {0};
    /* prompt = first 3 ids, generated = the last 3 (2, 4, 4) */
    lmc_sampling s = {.repetition_penalty = 2, .frequency_penalty = 0.5f, .presence_penalty = 0.25f};
    CHECK(lmc_sample_has_penalties(&s));
    lmc_sample_penalize(l, 5, ids, 6, 3, &s, counts);
    CHECK(fabsf(l[0] - 1.0f) < 1e-6f);                   /* 2 / 2 */
    CHECK(fabsf(l[1] - -4.0f) < 1e-6f);                  /* -2 * 2 */
    CHECK(fabsf(l[2] - (0.5f - 0.5f - 0.25f)) < 1e-6f);  /* 1/2, once generated */
    CHECK(fabsf(l[3] - 0.5f) < 1e-6f);                   /* never seen */
    CHECK(fabsf(l[4] - (1.5f - 1.0f - 0.25f)) < 1e-6f);  /* 3/2, twice generated */
    for (int i = 0; i < 5; i++)
        CHECK(counts[i] == 0);
    lmc_sampling off = {.temperature = 1, .top_p = 1};
    CHECK(!lmc_sample_has_penalties(&off));
}

/* feeds pieces, returns everything taken (final take included) */
static void run_text(const char *const *stops, int ns, const char *const *pieces, int np, const char *want,
                     int want_stop, int check_holdback)
{
    lmc_textstream t;
    CHECK_OK(lmc_text_init(&t, stops, ns));
    lmc_sb out;
    lmc_sb_init(&out);
    lmc_sb_put(&out, "", 0);
    for (int i = 0; i < np; i++) {
        lmc_text_push(&t, pieces[i], strlen(pieces[i]));
        const char *p;
        size_t n = lmc_text_take(&t, 0, &p);
        lmc_sb_put(&out, p, n);
        if (check_holdback) /* never half a character */
            CHECK(out.len == 0 || (unsigned char)out.s[out.len - 1] < 0x80);
    }
    const char *p;
    size_t n = lmc_text_take(&t, 1, &p);
    lmc_sb_put(&out, p, n);
    CHECK_MSG(out.len == strlen(want) && !memcmp(out.s, want, out.len), "text '%.*s', want '%s'", (int)out.len,
              out.s, want);
    CHECK(t.stopped == want_stop);
    lmc_sb_free(&out);
    lmc_text_free(&t);
}

static void test_text_stream(void)
{
    const char *stops[2] = {"END", "\n\n"};
    const char *a[4] = {"Hello E", "N", "D", " more"};
    run_text(stops, 2, a, 4, "Hello ", 1, 0);
    const char *b[3] = {"one\n", "\ntwo", "!"};
    run_text(stops, 2, b, 3, "one", 1, 0);
    const char *c[3] = {"EN", "X", "E"}; /* a partial match that fails is shown */
    run_text(stops, 2, c, 3, "ENXE", 0, 0);
    /* "é" = C3 A9 and "€" = E2 82 AC split across tokens */
    const char *d[4] = {"caf\xc3", "\xa9 \xe2", "\x82", "\xac!"};
    run_text(NULL, 0, d, 4, "caf\xc3\xa9 \xe2\x82\xac!", 0, 1);
    /* a stop string inside one token, and text after it ignored */
    const char *e[2] = {"abcENDdef", "ghi"};
    run_text(stops, 2, e, 2, "abc", 1, 0);
}

int main(void)
{
    RUN(test_sampling_matches_definition);
    RUN(test_greedy_and_topk);
    RUN(test_penalties);
    RUN(test_text_stream);
    return test_summary();
}
