/* lmc.c: the one command-line tool; dispatches to tools/cmd_*.c. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

#define LMC_VERSION "0.1.0"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
#define X(n, h) {#n, lmc_cmd_##n, h},
    LMC_COMMANDS(X)
#undef X
};

static void usage(FILE *f)
{
    fprintf(f, "lmc %s: train and serve GPT-style language models\n\nusage: lmc <command> [flags]\n\ncommands:\n",
            LMC_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (commands[i].fn)
            fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`lmc <command> --help` lists a command's flags.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("lmc %s\n", LMC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (commands[i].fn && !strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lmc: unknown command '%s' (see lmc --help)\n", argv[1]);
    return 2;
}
