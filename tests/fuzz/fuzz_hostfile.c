/* fuzz_hostfile.c: libFuzzer target for lmc launch's host file parser
 * (lmc_hostfile_parse, src/launch/hostfile.c) and the plan made from it
 * (lmc_launch_plan_make, src/launch/plan.c). The first byte picks:
 *   even  the rest is a host file;
 *   odd   the next 6 bytes are a plan rule (min ranks, --tp x --pp group,
 *         ZeRO-3, --batch, --grad-accum, a global batch or 0), then the file.
 * Properties:
 *  - a refusal names the file ("fuzz/hosts...");
 *  - an accepted file has at least one host, names made of the allowed
 *    characters and listed once (a repeat is refused), slots within bounds, max_slots 0 or at
 *    least slots; written back as `name slots=N max_slots=M` lines it parses
 *    to the same list;
 *  - a plan uses at most the usable slots, a multiple of the group, at least
 *    the minimum, spread over hosts of the file within their slots, and its
 *    --batch x --grad-accum x replicas is the global batch, with --batch at
 *    most the rule's.
 * Seeds: host files in Open MPI's syntax (comments, a repeated host, user@host,
 * max_slots), and rules. */
#include "fuzz_common.h"
#include "launch/launch_internal.h"

#include <stdlib.h>
#include <string.h>

#define RULE 6

static const char *const files[] = {
    "localhost slots=2\n",
    "# the lab's hosts\nnode01 slots=4 max_slots=8   # rack 1\nnode02 slots=4\n\nnode03 slots=2\n",
    "node01 slots=2\nnode01 slots=2\n",
    "user@gpu-7.example.org slots=8 max-slots=8\r\n10.0.0.12 slots=0\nfe80::1 slots=1",
    "a slots=1\nb slots=1\nc slots=1\nd slots=3\n",
};

static void seeds(void)
{
    static const unsigned char rules[][RULE] = {{1, 1, 0, 4, 1, 0}, {2, 2, 0, 2, 3, 24}, {1, 1, 1, 1, 8, 0}};
    char name[64];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(name, sizeof name, "seed-file-%zu", i);
        fuzz_seed(name, 0, files[i], strlen(files[i]));
        for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
            snprintf(name, sizeof name, "seed-plan-%zu-%zu", i, r);
            fuzz_seed2(name, 1, rules[r], RULE, -1, files[i], strlen(files[i]));
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding())
        seeds();
    return 0;
}

static void check_hosts(const lmc_hostfile *hf)
{
    FUZZ_ASSERT(hf->n >= 1);
    for (int i = 0; i < hf->n; i++) {
        const lmc_host *h = &hf->hosts[i];
        size_t n = strlen(h->name);
        FUZZ_ASSERT(n >= 1 && n <= 255 && strspn(h->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                          "0123456789.-_:@") == n);
        FUZZ_ASSERT(lmc_hostfile_find(hf, h->name) == i);
        FUZZ_ASSERT(h->slots >= 0 && h->slots <= (1 << 20) && h->line >= 1);
        FUZZ_ASSERT(h->max_slots == 0 || h->max_slots >= h->slots);
    }
}

static void round_trip(const lmc_hostfile *hf)
{
    lmc_sb sb;
    lmc_hostfile back;
    lmc_sb_init(&sb);
    for (int i = 0; i < hf->n; i++) {
        lmc_sb_printf(&sb, "%s slots=%d", hf->hosts[i].name, hf->hosts[i].slots);
        if (hf->hosts[i].max_slots)
            lmc_sb_printf(&sb, " max_slots=%d", hf->hosts[i].max_slots);
        lmc_sb_putc(&sb, '\n');
    }
    FUZZ_ASSERT(!sb.oom && lmc_hostfile_parse(sb.s, sb.len, "written", &back) == LMC_OK);
    FUZZ_ASSERT(back.n == hf->n);
    for (int i = 0; i < hf->n; i++)
        FUZZ_ASSERT(!strcmp(back.hosts[i].name, hf->hosts[i].name) && back.hosts[i].slots == hf->hosts[i].slots &&
                    back.hosts[i].max_slots == hf->hosts[i].max_slots);
    lmc_hostfile_free(&back);
    lmc_sb_free(&sb);
}

static void check_plan(const lmc_hostfile *hf, const uint8_t *r)
{
    lmc_plan_rule rule = {.min_ranks = 1 + r[0] % 16, .group = 1 + r[1] % 4, .min_dp = 1 + (r[2] & 1),
                          .batch = 1 + r[3] % 16, .accum = 1 + r[4] % 16, .global = r[5]};
    lmc_health health = {0};
    lmc_launch_plan p;
    if (hf->n > 0) { /* a failure or an exclusion from the rule's bits */
        lmc_host_health *h = lmc_health_of(&health, hf->hosts[r[0] % hf->n].name);
        FUZZ_ASSERT(h);
        h->lost = r[1] >> 4, h->excluded = r[2] >> 7;
    }
    if (lmc_launch_plan_make(hf, &health, &rule, &p) == LMC_OK) {
        const lmc_launch_split *sp = &p.split;
        int sum = 0;
        FUZZ_ASSERT(sp->ranks >= rule.min_ranks && sp->ranks <= p.avail && sp->ranks % rule.group == 0);
        FUZZ_ASSERT(sp->dp == sp->ranks / rule.group && sp->dp >= rule.min_dp);
        FUZZ_ASSERT(sp->batch >= 1 && sp->batch <= rule.batch && sp->accum >= 1);
        long long global = rule.global ? rule.global : (long long)rule.batch * rule.accum * sp->dp;
        FUZZ_ASSERT((long long)sp->batch * sp->accum * sp->dp == global);
        for (int i = 0; i < p.nhosts; i++) {
            int at = lmc_hostfile_find(hf, p.names[i]);
            FUZZ_ASSERT(at >= 0 && p.ranks[i] >= 1 && p.ranks[i] <= hf->hosts[at].slots);
            sum += p.ranks[i];
        }
        FUZZ_ASSERT(sum == sp->ranks && lmc_launch_plan_host(&p, sum - 1) && !lmc_launch_plan_host(&p, sum));
        lmc_launch_plan_free(&p);
    }
    lmc_health_free(&health);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int plan = data[0] & 1;
    if (plan && size < 1 + RULE)
        return 0;
    const uint8_t *text = data + 1 + (plan ? RULE : 0);
    size_t len = size - 1 - (plan ? RULE : 0);
    lmc_hostfile hf;
    if (lmc_hostfile_parse((const char *)text, len, "fuzz/hosts", &hf) != LMC_OK) {
        FUZZ_ASSERT(!strncmp(lmc_errmsg(), "fuzz/hosts", 10));
        return 0;
    }
    check_hosts(&hf);
    round_trip(&hf);
    if (plan)
        check_plan(&hf, data + 1);
    lmc_hostfile_free(&hf);
    return 0;
}
