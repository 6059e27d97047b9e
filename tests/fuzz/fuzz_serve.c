/* fuzz_serve.c: libFuzzer target for the server's request parser
 * (srv_parse_request, src/serve/api.c), called directly: no HTTP, no model.
 * The first byte sets the endpoint (bit 0: completions or chat), whether the
 * tokenizer has the ChatML special tokens (bit 1), the context (bit 2: 16 or
 * 256 tokens) and the server's max_tokens cap (bit 3); the rest is the body.
 * Properties: an accepted request has a prompt of in-vocabulary ids that
 * leaves room for at least one new token within the context and the cap,
 * sampling values within their documented ranges, at most 5 stop strings and
 * in-range logit biases; a refused one has a 4xx/500 status and an error body
 * that is valid JSON carrying its message. Freed as the server frees it, so
 * LeakSanitizer sees any leak on either path. Seeds: requests written with
 * lmc's JSON string writer. */
#include "fuzz_common.h"
#include "lmc/tokenizer.h"
#include "serve/serve_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lmc_tokenizer *tok;
static lmc_server sv;
static int ids[3]; /* <|endoftext|>, <|im_start|>, <|im_end|> */

static const char *CORPUS = "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it? "
                            "<|im_start|>user\nhello<|im_end|>\n naïve café 中文字符 🎉 3.14159\n";

/* A request body: "model" and the prompt or messages, then the fields
 * given as name, JSON value pairs. */
static void seed_request(const char *name, int mode, const char *prompt_or_messages, const char *const *kv)
{
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_sb_puts(&o, "{\"model\": ");
    lmc_sb_json_str(&o, "lmc", 3);
    lmc_sb_puts(&o, mode & 1 ? ", \"messages\": " : ", \"prompt\": ");
    lmc_sb_puts(&o, prompt_or_messages);
    for (int i = 0; kv && kv[i]; i += 2) {
        lmc_sb_puts(&o, ", ");
        lmc_sb_json_str(&o, kv[i], strlen(kv[i]));
        lmc_sb_printf(&o, ": %s", kv[i + 1]);
    }
    lmc_sb_putc(&o, '}');
    fuzz_seed(name, mode, o.s, o.len);
    lmc_sb_free(&o);
}

static void seeds(void)
{
    lmc_sb text;
    lmc_sb_init(&text);
    const char *prompt = "Once upon a time, \"quoted\"\n\xc3\xa9";
    lmc_sb_json_str(&text, prompt, strlen(prompt));
    const char *sampling[] = {"temperature", "0.7", "top_p", "0.9", "top_k", "40", "seed", "-12345",
                              "frequency_penalty", "0.5", "presence_penalty", "-0.5", "repetition_penalty", "1.1",
                              "max_tokens", "5", "stop", "[\"\\n\", \"end\"]", "logit_bias", "{\"10\": -100, \"257\": 5}",
                              "stream", "true", "stream_options", "{\"include_usage\": true}", "user", "\"u1\"",
                              "n", "1", "echo", "true", "logprobs", "null", "suffix", "\"\"", NULL};
    seed_request("seed-completion", 4, text.s, sampling);
    seed_request("seed-completion-ids", 0, "[1, 2, 3, 257]", (const char *[]){"max_tokens", "3", NULL});
    seed_request("seed-completion-nested", 8, "[[5, 6]]", NULL);
    seed_request("seed-completion-array", 12, "[\"a\"]", (const char *[]){"stop", "\"x\"", NULL});
    const char *chat = "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
                       "[{\"type\": \"text\", \"text\": \"hi\"}]}, {\"role\": \"assistant\", \"content\": null}, "
                       "{\"role\": \"tool\", \"content\": \"42\"}]";
    seed_request("seed-chat", 5, chat, (const char *[]){"max_completion_tokens", "4", "logprobs", "false", NULL});
    seed_request("seed-chat-no-specials", 7, chat, (const char *[]){"stop", "[\"a\", \"b\", \"c\", \"d\"]", NULL});
    lmc_sb_free(&text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    lmc_tok_train_opts o = {.vocab_size = 300, .specials = specials, .n_specials = 3, .min_frequency = 1};
    lmc_tok_trainer *tr = NULL;
    if (lmc_tok_trainer_new(&o, &tr) || lmc_tok_trainer_feed(tr, CORPUS, strlen(CORPUS)) ||
        lmc_tok_trainer_finish(tr, &tok)) {
        fprintf(stderr, "fuzz setup failed: %s\n", lmc_errmsg());
        abort();
    }
    lmc_tok_trainer_free(tr);
    for (int i = 0; i < 3; i++)
        ids[i] = lmc_tok_special_id(tok, specials[i]);
    sv.tok = tok;
    sv.vocab = lmc_tok_vocab_size(tok);
    sv.model_name = "lmc";
    pthread_mutex_init(&sv.mu, NULL);
    if (fuzz_seeding())
        seeds();
    return 0;
}

static void check_accepted(const req_params *p, srv_endpoint kind)
{
    FUZZ_ASSERT(p->kind == kind && p->n_prompt >= 1 && p->prompt);
    for (int i = 0; i < p->n_prompt; i++)
        FUZZ_ASSERT(p->prompt[i] >= 0 && p->prompt[i] < sv.vocab);
    FUZZ_ASSERT(p->max_new >= 1 && p->max_new <= sv.max_tokens && p->n_prompt + p->max_new <= sv.ctx);
    FUZZ_ASSERT(p->sp.temperature >= 0 && p->sp.temperature <= 2 && p->sp.top_p > 0 && p->sp.top_p <= 1);
    FUZZ_ASSERT(p->sp.top_k >= 0 && p->n_stop <= 5 && p->n_stop_ids <= 2);
    for (int i = 0; i < p->n_stop; i++)
        FUZZ_ASSERT(p->stop[i] && strlen(p->stop[i]) <= 256);
    for (int i = 0; i < p->n_bias; i++)
        FUZZ_ASSERT(p->bias_ids[i] >= 0 && p->bias_ids[i] < sv.vocab && p->bias_vals[i] >= -100 &&
                    p->bias_vals[i] <= 100);
    FUZZ_ASSERT(!p->echo_text || p->echo);
}

static void check_refused(const srv_error *e)
{
    FUZZ_ASSERT(e->status == 400 || e->status == 404 || e->status == 500);
    FUZZ_ASSERT(e->message[0] && e->type);
    lmc_sb o;
    lmc_sb_init(&o);
    srv_error_json(&o, e);
    lmc_json *j = NULL;
    FUZZ_ASSERT(lmc_json_parse(o.s, o.len, "error body", &j) == LMC_OK);
    const lmc_json *msg = lmc_json_get(lmc_json_get(j, "error"), "message");
    FUZZ_ASSERT(msg && msg->type == LMC_JSON_STR && msg->slen > 0);
    lmc_json_free(j);
    lmc_sb_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    srv_endpoint kind = mode & 1 ? EP_CHAT : EP_COMPLETIONS;
    int specials = !(mode & 2);
    sv.eot_id = ids[0];
    sv.im_start_id = specials ? ids[1] : -1;
    sv.im_end_id = specials ? ids[2] : -1;
    sv.ctx = mode & 4 ? 256 : 16;
    sv.max_tokens = mode & 8 ? 8 : sv.ctx;
    req_params p;
    srv_error e = {0};
    if (srv_parse_request(&sv, kind, (const char *)data + 1, size - 1, &p, &e) == 0)
        check_accepted(&p, kind);
    else
        check_refused(&e);
    srv_params_free(&p);
    return 0;
}
