/* trainargs.c: the `lmc train` command lmc launch runs: the flags it needs
 * to know (--out, --steps, the batch shape, the layout), and the command of
 * each start with --batch, --grad-accum, --resume and --log set for it.
 *
 * lmc train's own parser checks every flag when the job starts; here a flag
 * takes the next word as its value unless that word is another flag, so a
 * switch this file does not know about is still skipped correctly. */
#include "launch/launch_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const switches[] = {"no-shuffle", "sp", "quiet", "help", NULL};
/* the flags a start sets itself */
static const char *const replaced[] = {"batch", "grad-accum", "resume", "log", NULL};

static int in_list(const char *const *list, const char *name, size_t len)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && !strncmp(list[i], name, len))
            return 1;
    return 0;
}

typedef struct {
    const char *name; /* after "--", up to '=' */
    size_t len;
    const char *value; /* NULL for a switch */
    int words;         /* argv entries it takes */
} flag;

/* The flag at argv[i]. */
static lmc_status flag_at(int argc, char **argv, int i, flag *f)
{
    const char *a = argv[i];
    if (strncmp(a, "--", 2) || !a[2])
        return lmc_err(LMC_EINVAL, "the train command: unexpected argument '%s' (lmc train takes --flags only)", a);
    const char *eq = strchr(a, '=');
    f->name = a + 2;
    f->len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    f->words = 1;
    f->value = eq ? eq + 1 : NULL;
    if (!eq && !in_list(switches, f->name, f->len) && i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
        f->value = argv[i + 1];
        f->words = 2;
    }
    return LMC_OK;
}

static lmc_status int_flag(const flag *f, const char *name, long long lo, long long hi, int *dst)
{
    char what[64];
    long long v;
    snprintf(what, sizeof what, "the train command's --%s", name);
    if (!f->value)
        return lmc_err(LMC_EINVAL, "%s needs a value", what);
    LMC_TRY(lmc_parse_int(f->value, what, lo, hi, &v));
    *dst = (int)v;
    return LMC_OK;
}

static int is(const flag *f, const char *name)
{
    return strlen(name) == f->len && !strncmp(f->name, name, f->len);
}

static lmc_status take_flag(lmc_train_cmd *tc, const flag *f)
{
    const char **strs[] = {&tc->out, &tc->log, &tc->resume};
    static const char *const str_names[] = {"out", "log", "resume"};
    for (int k = 0; k < 3; k++)
        if (is(f, str_names[k])) {
            if (!f->value)
                return lmc_err(LMC_EINVAL, "the train command's --%s needs a value", str_names[k]);
            *strs[k] = f->value;
        }
    int *ints[] = {&tc->batch, &tc->accum, &tc->seq, &tc->steps, &tc->tp, &tc->pp, &tc->zero, &tc->save_every};
    static const char *const int_names[] = {"batch", "grad-accum", "seq", "steps", "tp", "pp", "zero", "save-every"};
    for (int k = 0; k < 8; k++)
        if (is(f, int_names[k]))
            LMC_TRY(int_flag(f, int_names[k], k == 6 || k == 7 || k == 3 ? 0 : 1, 1 << 30, ints[k]));
    if (is(f, "dist") && f->value && !strcmp(f->value, "single"))
        return lmc_err(LMC_EINVAL, "the train command has --dist single: under mpirun each rank would train alone");
    return LMC_OK;
}

lmc_status lmc_train_cmd_parse(int argc, char **argv, lmc_train_cmd *tc)
{
    memset(tc, 0, sizeof *tc);
    tc->batch = 4, tc->accum = 1, tc->seq = 64, tc->steps = 100, tc->tp = 1, tc->pp = 1; /* lmc train's defaults */
    if (argc < 2 || strcmp(argv[1], "train"))
        return lmc_err(LMC_EINVAL, "lmc launch runs `lmc train FLAGS...` after --, not '%s%s%s'",
                       argc > 0 ? argv[0] : "(nothing)", argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
    tc->argc = argc;
    tc->argv = argv;
    for (int i = 2; i < argc;) {
        flag f;
        LMC_TRY(flag_at(argc, argv, i, &f));
        LMC_TRY(take_flag(tc, &f));
        i += f.words;
    }
    if (!tc->out)
        return lmc_err(LMC_EINVAL, "the train command has no --out DIR: lmc launch restarts from the checkpoints "
                       "there (add --out DIR --save-every N)");
    return LMC_OK;
}

lmc_status lmc_train_cmd_argv(const lmc_train_cmd *tc, const lmc_launch_split *sp, const char *resume,
                              const char *log, char ***argv, char **owned)
{
    *argv = calloc((size_t)tc->argc + 10, sizeof **argv);
    *owned = malloc(64);
    if (!*argv || !*owned) {
        free(*argv), free(*owned);
        *argv = NULL, *owned = NULL;
        return lmc_err(LMC_ENOMEM, "out of memory");
    }
    char **a = *argv, *nums = *owned;
    int n = 0;
    a[n++] = tc->argv[0];
    a[n++] = tc->argv[1];
    for (int i = 2; i < tc->argc;) {
        flag f;
        LMC_TRY(flag_at(tc->argc, tc->argv, i, &f));
        for (int w = 0; w < f.words && !in_list(replaced, f.name, f.len); w++)
            a[n++] = tc->argv[i + w];
        i += f.words;
    }
    int b = snprintf(nums, 64, "%d", sp->batch) + 1;
    snprintf(nums + b, 64 - (size_t)b, "%d", sp->accum);
    a[n++] = "--batch", a[n++] = nums;
    a[n++] = "--grad-accum", a[n++] = nums + b;
    if (resume)
        a[n++] = "--resume", a[n++] = (char *)resume;
    a[n++] = "--log", a[n++] = (char *)log;
    a[n] = NULL;
    return LMC_OK;
}
