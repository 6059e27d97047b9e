/* test_launch.c: lmc launch's pieces that need no mpirun: the host file
 * parser, the global-batch rule, the plan of a start (lost slots, excluded
 * hosts, idle slots), the train command of a start, and following a
 * trainer's log. tests/mpi/test_launch.sh runs the supervisor itself. */
#include "launch/launch_internal.h"
#include "test.h"

static lmc_status parse(const char *text, lmc_hostfile *hf)
{
    return lmc_hostfile_parse(text, strlen(text), "hosts", hf);
}

static void test_hostfile(void)
{
    lmc_hostfile hf;
    CHECK_OK(parse("# lab\n\nnode1 slots=5 max_slots=8 # gpu box\r\n  node2\tslots=1\nuser@n-3.x slots=0", &hf));
    CHECK(hf.n == 3 && lmc_hostfile_slots(&hf) == 6);
    CHECK(!strcmp(hf.hosts[0].name, "node1") && hf.hosts[0].slots == 5 && hf.hosts[0].line == 3);
    CHECK(hf.hosts[0].max_slots == 8 && hf.hosts[1].max_slots == 0);
    CHECK(lmc_hostfile_find(&hf, "user@n-3.x") == 2 && lmc_hostfile_find(&hf, "node") == -1);
    lmc_hostfile_free(&hf);
    CHECK_ERR(parse("a slots=1\nb slots=-1\n", &hf), LMC_EFORMAT, "hosts:2: slots: -1 is out of range");
    CHECK_ERR(parse("a slots=1 slots=2\n", &hf), LMC_EFORMAT, "hosts:1: slots given twice for host a");
    CHECK_ERR(parse("a slots=1\nb slots=1\na slots=2\n", &hf), LMC_EFORMAT, "hosts:3: host a is listed again (first "
              "on line 1)");
    CHECK_ERR(parse("a slots=\n", &hf), LMC_EFORMAT, "hosts:1: slots has no value");
    CHECK_ERR(parse("a slots=1 cpus\n", &hf), LMC_EFORMAT, "hosts:1: 'cpus' after host a is not a key=value");
    CHECK_ERR(parse("slots=1\n", &hf), LMC_EFORMAT, "hosts:1: 'slots=1' where a host name should come first");
    CHECK_ERR(parse("-a slots=1\n", &hf), LMC_EFORMAT, "hosts:1: host name '-a' starts with '-'");
    CHECK_ERR(lmc_hostfile_parse("a slots=1\n\0b", 12, "hosts", &hf), LMC_EFORMAT, "hosts:2: a NUL byte");
    CHECK_ERR(parse("a slots=1048577\n", &hf), LMC_EFORMAT, "out of range");
}

static void test_split(void)
{
    lmc_launch_split sp;
    CHECK_OK(lmc_launch_split_batch(8, 2, 1, 2, &sp)); /* keeps --batch 2: accum 2 */
    CHECK(sp.dp == 2 && sp.batch == 2 && sp.accum == 2);
    CHECK_OK(lmc_launch_split_batch(12, 4, 1, 3, &sp)); /* 12 / 3 = 4: one micro-batch of 4 */
    CHECK(sp.batch == 4 && sp.accum == 1);
    CHECK_OK(lmc_launch_split_batch(12, 4, 1, 6, &sp)); /* 12 / 6 = 2: --batch falls to 2 */
    CHECK(sp.batch == 2 && sp.accum == 1);
    CHECK_OK(lmc_launch_split_batch(12, 4, 2, 4, &sp)); /* --tp 2: 2 replicas of 6 sequences */
    CHECK(sp.dp == 2 && sp.batch == 3 && sp.accum == 2);
    CHECK_ERR(lmc_launch_split_batch(8, 2, 1, 3, &sp), LMC_ERANGE, "8 sequences does not split evenly over 3");
    CHECK_ERR(lmc_launch_split_batch(8, 2, 2, 3, &sp), LMC_ERANGE, "3 ranks are not a whole number");
}

static void test_plan(void)
{
    lmc_hostfile hf;
    lmc_health hl = {0};
    lmc_launch_plan p;
    CHECK_OK(parse("a slots=2\nb slots=2\nc slots=1\n", &hf));
    lmc_plan_rule r = {.min_ranks = 1, .group = 1, .min_dp = 1, .batch = 1, .accum = 2};
    CHECK_OK(lmc_launch_plan_make(&hf, &hl, &r, &p)); /* the first start fixes the batch: 5 x 1 x 2 */
    CHECK(p.split.ranks == 5 && p.nhosts == 3 && !strcmp(lmc_launch_plan_host(&p, 2), "b"));
    lmc_launch_plan_free(&p);
    r.global = 8; /* 8 sequences: 5 ranks do not split them, 4 do (c idle) */
    CHECK_OK(lmc_launch_plan_make(&hf, &hl, &r, &p));
    CHECK(p.split.ranks == 4 && p.avail == 5 && p.nhosts == 2 && p.split.accum == 2);
    char d[64];
    lmc_launch_plan_describe(&p, d, sizeof d);
    CHECK(!strcmp(d, "a:2 b:2"));
    lmc_launch_plan_free(&p);
    lmc_health_of(&hl, "a")->lost = 1; /* a rank died on a; b excluded */
    lmc_health_of(&hl, "b")->excluded = 1;
    CHECK_OK(lmc_launch_plan_make(&hf, &hl, &r, &p));
    CHECK(p.split.ranks == 2 && p.split.accum == 4 && !strcmp(p.names[0], "a") && !strcmp(p.names[1], "c"));
    lmc_launch_plan_free(&p);
    r.min_ranks = 3;
    CHECK_ERR(lmc_launch_plan_make(&hf, &hl, &r, &p), LMC_ERANGE, "2 usable slots, fewer than the 3 ranks needed");
    lmc_health_free(&hl);
    lmc_hostfile_free(&hf);
}

static void test_train_cmd(void)
{
    char *argv[] = {"lmc", "train", "--model", "d6", "--quiet", "--batch=2", "--grad-accum", "3", "--out", "ck",
                    "--log", "l.jsonl", "--resume", "old", "--steps", "9", "--sp", "--tp", "2", NULL};
    lmc_train_cmd tc;
    CHECK_OK(lmc_train_cmd_parse(19, argv, &tc));
    CHECK(tc.batch == 2 && tc.accum == 3 && tc.steps == 9 && tc.tp == 2 && tc.pp == 1 && tc.seq == 64);
    CHECK(!strcmp(tc.out, "ck") && !strcmp(tc.log, "l.jsonl") && !strcmp(tc.resume, "old"));
    lmc_launch_split sp = {.ranks = 4, .dp = 2, .batch = 1, .accum = 6};
    char **a, *owned, line[512] = "";
    CHECK_OK(lmc_train_cmd_argv(&tc, &sp, "ck", "l.jsonl", &a, &owned));
    for (int i = 0; a[i]; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", i ? " " : "", a[i]);
    CHECK_MSG(!strcmp(line, "lmc train --model d6 --quiet --out ck --steps 9 --sp --tp 2 --batch 1 --grad-accum 6 "
                            "--resume ck --log l.jsonl"), "%s", line);
    free(a), free(owned);
    char *bad[] = {"lmc", "train", "--model", "d6", "--steps", "x", NULL};
    CHECK_ERR(lmc_train_cmd_parse(6, bad, &tc), LMC_EINVAL, "the train command's --steps: 'x' is not an integer");
    char *noout[] = {"lmc", "train", "--model", "d6", NULL};
    CHECK_ERR(lmc_train_cmd_parse(4, noout, &tc), LMC_EINVAL, "has no --out DIR");
    char *other[] = {"lmc", "generate", NULL};
    CHECK_ERR(lmc_train_cmd_parse(2, other, &tc), LMC_EINVAL, "not 'lmc generate'");
    char *single[] = {"lmc", "train", "--out", "x", "--dist", "single", NULL};
    CHECK_ERR(lmc_train_cmd_parse(6, single, &tc), LMC_EINVAL, "--dist single");
}

static void test_trainlog(void)
{
    const char *dir = test_tmpdir("launch");
    CHECK(dir != NULL);
    if (!dir)
        return;
    const char *log = test_path("train.jsonl");
    lmc_trainlog tl;
    CHECK_OK(lmc_trainlog_open(&tl, log, 10));
    lmc_trainlog_read(&tl); /* no file yet */
    CHECK(tl.last_step == 0);
    FILE *f = fopen(log, "w");
    fputs("{\"step\":1,\"ms\":10}\n{\"step\":2,\"ms\":20}\n{\"step\":3,\"ms\":", f);
    fclose(f);
    lmc_trainlog_read(&tl);
    CHECK(tl.last_step == 2 && tl.seen == 2 && tl.first_step == 1);
    f = fopen(log, "a"); /* the rest of step 3, then a restart from step 1 redoes 2 and 3 */
    fputs("30}\n{\"step\":2,\"ms\":21}\n{\"step\":3,\"ms\":31}\nnot json\n", f);
    fclose(f);
    lmc_trainlog_mark(&tl);
    lmc_trainlog_read(&tl);
    CHECK(tl.last_step == 3 && tl.seen == 3 && tl.first_step == 3);
    CHECK(fabs(lmc_trainlog_useful_ms(&tl, 10) - 62) < 1e-9 && fabs(lmc_trainlog_ms(&tl, 1, 3) - 52) < 1e-9);
    lmc_trainlog_close(&tl);
    CHECK(lmc_latest_checkpoint(dir) == -1);
    f = fopen(test_path("latest"), "w");
    fputs("step_00000040\n", f);
    fclose(f);
    CHECK(lmc_latest_checkpoint(dir) == 40);
}

int main(void)
{
    RUN(test_hostfile);
    RUN(test_split);
    RUN(test_plan);
    RUN(test_train_cmd);
    RUN(test_trainlog);
    return test_summary();
}
