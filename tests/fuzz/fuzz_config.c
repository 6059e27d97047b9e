/* fuzz_config.c: libFuzzer target for the config.json reader
 * (lmc_config_from_hf_text, src/model/config.c). The first byte picks how
 * the rest is read:
 *   even  config.json text as it is;
 *   odd   records (key, kind, shift, 8 value bytes) that build a config.json
 *         of known fields, so that numbers of every size and sign reach the
 *         reader (text mutations rarely turn "768" into "536870912"): an
 *         integer is the value >> shift, a float the value's bits as a double.
 * Properties:
 *  - a config that loads is valid (lmc_config_finish accepts it again) and
 *    round-trips: saved with lmc_config_to_hf_json, it reloads to the very
 *    same config, field for field;
 *  - a refusal names the file.
 * Seeds: every preset saved by lmc_config_to_hf_json, and variants (untied,
 * grouped-query attention, odd sizes, a mixture of experts with a sigmoid
 * router, shared experts and dense first layers), as text and as records,
 * and past findings. */
#include "fuzz_common.h"
#include "lmc/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const keys[] = {
    "model_type", "n_layer", "n_head", "n_embd", "n_inner", "n_positions", "vocab_size", "activation_function",
    "layer_norm_epsilon", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_size",
    "intermediate_size", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta", "hidden_act",
    "attention_bias", "mlp_bias", "rope_scaling", "tie_word_embeddings", "n_ctx", "num_local_experts",
    "num_experts_per_tok", "router_aux_loss_coef", "output_router_logits", "scoring_func", "n_shared_experts",
    "first_k_dense_replace", "dense_intermediate_size", "router_jitter_noise", "sliding_window",
};
#define NKEYS (int)(sizeof keys / sizeof *keys)
static const char *const words[] = {"gpt2", "llama", "gelu_new", "gelu_pytorch_tanh", "silu", "relu", "",
                                    "mixtral", "softmax", "sigmoid"};
#define NWORDS (sizeof words / sizeof *words)
enum { K_INT, K_FLOAT, K_BOOL, K_NULL, K_WORD, K_COUNT };
#define RECORD 11

/* Records to config.json text: the model type first, then each record's
 * field (a later one of the same name wins, as in the reader). */
static void records_to_json(const uint8_t *r, size_t n, lmc_sb *o)
{
    lmc_sb_puts(o, "{\"model_type\": ");
    static const char *const types[] = {"\"gpt2\"", "\"llama\"", "\"mixtral\""};
    lmc_sb_puts(o, types[n ? r[0] % 3 : 0]);
    for (size_t i = 1; i + RECORD <= n; i += RECORD) {
        const uint8_t *x = r + i;
        uint64_t bits = 0;
        for (int b = 7; b >= 0; b--)
            bits = bits << 8 | x[3 + b];
        lmc_sb_puts(o, ", ");
        lmc_sb_json_str(o, keys[x[0] % NKEYS], strlen(keys[x[0] % NKEYS]));
        lmc_sb_puts(o, ": ");
        switch (x[1] % K_COUNT) {
        case K_INT: lmc_sb_printf(o, "%lld", (long long)bits >> (x[2] % 64)); break;
        case K_FLOAT: {
            double d;
            memcpy(&d, &bits, sizeof d);
            if (isfinite(d))
                lmc_sb_printf(o, "%.17g", d);
            else
                lmc_sb_puts(o, "1e999");
            break;
        }
        case K_BOOL: lmc_sb_puts(o, bits & 1 ? "true" : "false"); break;
        case K_NULL: lmc_sb_puts(o, "null"); break;
        case K_WORD: lmc_sb_json_str(o, words[bits % NWORDS], strlen(words[bits % NWORDS])); break;
        }
    }
    lmc_sb_putc(o, '}');
}

static void put_record(lmc_sb *r, const char *key, int kind, uint64_t v)
{
    int k = 0;
    while (strcmp(keys[k], key))
        k++;
    uint8_t x[RECORD] = {(uint8_t)k, (uint8_t)kind, 0};
    for (int b = 0; b < 8; b++)
        x[3 + b] = (uint8_t)(v >> (8 * b));
    lmc_sb_put(r, (const char *)x, RECORD);
}

static uint64_t float_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* The same config as records (mode byte and family first). */
static void config_records(const lmc_model_config *c, lmc_sb *r)
{
    int llama = !strcmp(c->family, "llama"), moe = c->n_expert > 0;
    lmc_sb_putc(r, 1);
    lmc_sb_putc(r, (char)(moe ? 2 : llama));
    put_record(r, llama ? "num_hidden_layers" : "n_layer", K_INT, (uint64_t)c->n_layer);
    put_record(r, llama ? "num_attention_heads" : "n_head", K_INT, (uint64_t)c->n_head);
    put_record(r, llama ? "hidden_size" : "n_embd", K_INT, (uint64_t)c->dim);
    put_record(r, llama ? "intermediate_size" : "n_inner", K_INT, (uint64_t)(moe ? c->moe_ffn : c->ffn_dim));
    put_record(r, llama ? "max_position_embeddings" : "n_positions", K_INT, (uint64_t)c->max_seq);
    put_record(r, "vocab_size", K_INT, (uint64_t)c->vocab);
    put_record(r, llama ? "rms_norm_eps" : "layer_norm_epsilon", K_FLOAT, float_bits(c->norm_eps));
    put_record(r, "tie_word_embeddings", K_BOOL, (uint64_t)c->tied);
    if (llama) {
        put_record(r, "num_key_value_heads", K_INT, (uint64_t)c->n_kv_head);
        put_record(r, "rope_theta", K_FLOAT, float_bits(c->rope_theta));
    }
    if (moe) {
        put_record(r, "num_local_experts", K_INT, (uint64_t)c->n_expert);
        put_record(r, "num_experts_per_tok", K_INT, (uint64_t)c->top_k);
        put_record(r, "n_shared_experts", K_INT, (uint64_t)c->n_shared);
        put_record(r, "first_k_dense_replace", K_INT, (uint64_t)c->first_dense);
        put_record(r, "dense_intermediate_size", K_INT, (uint64_t)c->ffn_dim);
        put_record(r, "router_aux_loss_coef", K_FLOAT, float_bits(c->aux_coef));
        put_record(r, "output_router_logits", K_BOOL, c->aux_coef > 0);
        put_record(r, "scoring_func", K_WORD, c->router == LMC_ROUTER_SIGMOID ? 9 : 8);
    }
}

static void seed_config(const char *name, const lmc_model_config *c)
{
    char rname[80];
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_config_to_hf_json(c, &o);
    fuzz_seed(name, 0, o.s, o.len);
    o.len = 0;
    config_records(c, &o);
    snprintf(rname, sizeof rname, "%s-records", name);
    fuzz_seed(rname, -1, o.s, o.len);
    lmc_sb_free(&o);
}

static void seeds(void)
{
    const char *const *names = lmc_config_preset_names();
    lmc_model_config c;
    char name[64];
    for (int i = 0; names[i]; i++) {
        if (lmc_config_preset(names[i], &c))
            abort();
        snprintf(name, sizeof name, "seed-%s", names[i]);
        seed_config(name, &c);
    }
    lmc_config_preset("llama-15m", &c); /* GQA, untied, odd sizes, small eps */
    c.n_kv_head = 2, c.tied = 0, c.ffn_dim = 777, c.vocab = 1001, c.norm_eps = 1e-6f, c.rope_theta = 500000.5f;
    if (lmc_config_finish(&c))
        abort();
    seed_config("seed-llama-variant", &c);
    lmc_config_preset("d6", &c);
    c.tied = 0, c.ffn_dim = 1000, c.max_seq = 7, c.norm_eps = 3e-7f;
    if (lmc_config_finish(&c))
        abort();
    seed_config("seed-gpt2-variant", &c);
    lmc_config_preset("moe-8x", &c); /* sigmoid router, shared experts, dense first layers */
    c.router = LMC_ROUTER_SIGMOID, c.n_shared = 2, c.first_dense = 3, c.ffn_dim = 999, c.aux_coef = 0.3f;
    if (lmc_config_finish(&c))
        abort();
    seed_config("seed-moe-variant", &c);
    /* past findings, replayed by every smoke run (tests/unit/test_parsers.c) */
    static const char dim[] = "{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_head\": 1, \"n_embd\": 536870912}";
    static const char theta[] = "{\"model_type\": \"llama\", \"num_hidden_layers\": 1, \"num_attention_heads\": 1, "
                                "\"hidden_size\": 8, \"intermediate_size\": 8, \"max_position_embeddings\": 8, "
                                "\"vocab_size\": 10, \"rope_theta\": 1e39}";
    fuzz_seed("regress-ffn-overflow", 0, dim, sizeof dim - 1);
    fuzz_seed("regress-rope-theta-inf", 0, theta, sizeof theta - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding())
        seeds();
    return 0;
}

static void same_config(const lmc_model_config *a, const lmc_model_config *b)
{
    FUZZ_ASSERT(!strcmp(a->family, b->family));
    FUZZ_ASSERT(a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_kv_head == b->n_kv_head);
    FUZZ_ASSERT(a->dim == b->dim && a->ffn_dim == b->ffn_dim && a->vocab == b->vocab);
    FUZZ_ASSERT(a->vocab_padded == b->vocab_padded && a->max_seq == b->max_seq);
    FUZZ_ASSERT(a->norm == b->norm && a->pos == b->pos && a->mlp == b->mlp && a->bias == b->bias);
    FUZZ_ASSERT(a->tied == b->tied && a->norm_eps == b->norm_eps && a->rope_theta == b->rope_theta);
    FUZZ_ASSERT(a->n_expert == b->n_expert && a->top_k == b->top_k && a->n_shared == b->n_shared);
    FUZZ_ASSERT(a->moe_ffn == b->moe_ffn && a->first_dense == b->first_dense && a->router == b->router);
    FUZZ_ASSERT(a->aux_coef == b->aux_coef);
}

static void check_text(const char *text, size_t size)
{
    lmc_model_config c, again, back;
    lmc_status s = lmc_config_from_hf_text(text, size, "fuzz/config.json", &c);
    if (s != LMC_OK) {
        FUZZ_ASSERT(!strncmp(lmc_errmsg(), "fuzz/config.json: ", 18));
        return;
    }
    FUZZ_ASSERT(isfinite(c.norm_eps) && isfinite(c.rope_theta));
    again = c;
    FUZZ_ASSERT(lmc_config_finish(&again) == LMC_OK);
    same_config(&c, &again);
    char desc[256];
    lmc_config_describe(&c, desc, sizeof desc);
    FUZZ_ASSERT(lmc_config_num_params(&c) > 0 && lmc_config_train_flops_per_token(&c, c.max_seq) > 0);
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_config_to_hf_json(&c, &o);
    FUZZ_ASSERT(!o.oom && lmc_config_from_hf_text(o.s, o.len, "saved config.json", &back) == LMC_OK);
    same_config(&c, &back);
    lmc_sb_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0) {
        check_text((const char *)data + 1, size - 1);
        return 0;
    }
    lmc_sb o;
    lmc_sb_init(&o);
    records_to_json(data + 1, size - 1, &o);
    FUZZ_ASSERT(!o.oom);
    check_text(o.s, o.len);
    lmc_sb_free(&o);
    return 0;
}
