/* cli.h: flag parsing shared by the lmc subcommands. Each subcommand is
 * `int lmc_cmd_NAME(int argc, char **argv)` in tools/cmd_NAME.c, with argv[0]
 * the subcommand's name; it returns the process exit code. */
#ifndef LMC_CLI_H
#define LMC_CLI_H

#include "lmc/core.h"

typedef enum { CLI_STR, CLI_INT, CLI_FLOAT, CLI_BOOL, CLI_LIST } cli_kind;

typedef struct {
    char **v;
    int n;
} cli_list;

/* One flag: --name VALUE (or --name=VALUE; CLI_BOOL takes no value).
 * dst points to: const char * (STR), long long (INT), double (FLOAT),
 * int (BOOL), cli_list (LIST, repeatable). lo/hi bound INT and FLOAT. */
typedef struct {
    const char *name;
    cli_kind kind;
    void *dst;
    const char *help;
    double lo, hi;
} cli_opt;

/* Parses argv[1..]; positional arguments are returned in pos (may be NULL
 * to forbid them). --help prints usage and returns LMC_EINVAL with an empty
 * message; callers then exit 0 via cli_exit. Records which flags were set. */
typedef struct {
    const char *cmd;      /* "train" */
    const char *synopsis; /* one line after "usage: lmc train" */
    const char *about;    /* a paragraph, may be NULL */
    const cli_opt *opts;  /* terminated by {NULL} */
    int help;             /* set when --help was given */
    unsigned char set[128];
} cli_spec;

lmc_status cli_parse(cli_spec *spec, int argc, char **argv, cli_list *pos);
int cli_was_set(const cli_spec *spec, const char *name);
/* LMC_EINVAL "--a is required" / "--a, --b and --c are required" unless
 * every flag named in `names` (space-separated) was given. */
lmc_status cli_require(const cli_spec *spec, const char *names);
/* cli_parse without positional arguments, then cli_require(names). */
lmc_status cli_parse_require(cli_spec *spec, int argc, char **argv, const char *names);
/* handler for SIGINT and SIGTERM (a graceful stop: lmc serve, lmc launch). */
void cli_catch_stop(void (*handler)(int));
/* The help of every --tokenizer DIR flag. */
#define CLI_TOKENIZER_HELP "tokenizer folder (lmc-tokenizer.json, or GPT-2's encoder.json + vocab.bpe)"
void cli_usage(const cli_spec *spec, FILE *f);
/* Prints "lmc CMD: error: MSG" for a failed status and returns 1 (2 for
 * flag errors); returns 0 when s is LMC_OK. */
int cli_exit(const cli_spec *spec, lmc_status s);
int cli_fail(const char *cmd, lmc_status s);
void cli_list_free(cli_list *l);

#endif
