/* cmd_encode.c: `lmc encode` (text on stdin -> token ids on stdout) and
 * `lmc decode` (ids -> text). Both stream, so input of any size works:
 * encode cuts its input only where pre-tokenization is unaffected
 * (lmc_tok_encode_file, lmc_tok_decode_file: src/tokenizer/stream.c). */
#include "cli.h"
#include "lmc/tokenizer.h"

int lmc_cmd_encode(int argc, char **argv)
{
    const char *dir = NULL;
    int special = 0;
    cli_opt opts[] = {
        {"tokenizer", CLI_STR, &dir, CLI_TOKENIZER_HELP},
        {"special", CLI_BOOL, &special, "turn special token names in the text (<|endoftext|>) into their ids"},
        {NULL},
    };
    cli_spec spec = {.cmd = "encode", .synopsis = "--tokenizer DIR < text > ids", .opts = opts,
                     .about = "Reads text on stdin and writes its token ids, separated by spaces, on stdout. "
                              "Special token names are ordinary text unless --special is given."};
    lmc_status s = cli_parse_require(&spec, argc, argv, "tokenizer");
    if (s != LMC_OK)
        return cli_exit(&spec, s);
    lmc_tokenizer *tok;
    if ((s = lmc_tok_load(dir, &tok)) != LMC_OK)
        return cli_fail("encode", s);
    s = lmc_tok_encode_file(tok, stdin, "<stdin>", special, stdout);
    lmc_tok_free(tok);
    return cli_fail("encode", s);
}

int lmc_cmd_decode(int argc, char **argv)
{
    const char *dir = NULL;
    cli_opt opts[] = {
        {"tokenizer", CLI_STR, &dir, CLI_TOKENIZER_HELP},
        {NULL},
    };
    cli_spec spec = {.cmd = "decode", .synopsis = "--tokenizer DIR < ids > text", .opts = opts,
                     .about = "Reads token ids separated by whitespace on stdin and writes their bytes on stdout."};
    lmc_status s = cli_parse_require(&spec, argc, argv, "tokenizer");
    if (s != LMC_OK)
        return cli_exit(&spec, s);
    lmc_tokenizer *tok;
    if ((s = lmc_tok_load(dir, &tok)) != LMC_OK)
        return cli_fail("decode", s);
    s = lmc_tok_decode_file(tok, stdin, "<stdin>", stdout);
    lmc_tok_free(tok);
    return cli_fail("decode", s);
}
