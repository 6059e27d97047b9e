/* fuzz_gguf_seeds.c: the seed .gguf files of the GGUF targets (fuzz_gguf,
 * fuzz_gguf_range): lmc_gguf_export of a tiny GPT-2, a tiny Llama (GQA)
 * and a tiny Mixtral (2 experts, top 1: llama.expert_count and the stacked
 * 3-D ffn_*_exps tensors) with a 258-token tokenizer, in q8_0, bf16 and f32. */
#include "fuzz_common.h"
#include "lmc/gguf.h"

#include <stdio.h>
#include <stdlib.h>

/* As small as a model with a byte-level vocabulary gets (the tokenizer's
 * 258 tokens make most of the file): 1 layer, tied head. llama 2: with
 * experts. */
static void seed_model(int llama, int ftype, int dim, const lmc_tokenizer *t)
{
    lmc_model_config c;
    lmc_layout l;
    if (lmc_config_preset(llama ? "llama-15m" : "d6", &c))
        abort();
    c.n_layer = 1, c.dim = dim, c.n_head = 2, c.n_kv_head = llama ? 1 : 2, c.ffn_dim = 32, c.vocab = 258;
    c.max_seq = 4, c.tied = 1;
    if (llama == 2)
        c.n_expert = 2, c.top_k = 1, c.moe_ffn = c.ffn_dim;
    if (lmc_config_finish(&c) || lmc_layout_build(&c, &l))
        abort();
    float *p = lmc_alloc(l.total * sizeof(float), "seed");
    if (!p)
        abort();
    lmc_weights_init(&c, &l, p, 1);
    char path[4200], name[64];
    snprintf(name, sizeof name, "seed-%s-%s-%d.gguf", llama == 2 ? "mixtral" : llama ? "llama" : "gpt2",
             lmc_gguf_ftype_name(ftype), dim);
    fuzz_path(path, sizeof path, getenv("LMC_FUZZ_SEEDS"), name);
    if (lmc_gguf_export(path, name, &c, &l, p, t, ftype))
        abort();
    lmc_free(p);
    lmc_layout_free(&l);
}

void fuzz_gguf_seeds(void)
{
    static const char *sp[] = {"<|endoftext|>"};
    lmc_tok_train_opts o = {.vocab_size = 258, .specials = sp, .n_specials = 1};
    lmc_tok_trainer *tr;
    lmc_tokenizer *t;
    if (lmc_tok_trainer_new(&o, &tr) || lmc_tok_trainer_feed(tr, "aab aab ab", 10) || lmc_tok_trainer_finish(tr, &t))
        abort();
    lmc_tok_trainer_free(tr);
    seed_model(0, LMC_GGUF_FTYPE_Q8_0, 32, t);
    seed_model(1, LMC_GGUF_FTYPE_Q8_0, 32, t);
    seed_model(1, LMC_GGUF_FTYPE_BF16, 16, t);
    seed_model(0, LMC_GGUF_FTYPE_F32, 8, t);
    seed_model(2, LMC_GGUF_FTYPE_F32, 8, t);
    seed_model(2, LMC_GGUF_FTYPE_Q8_0, 32, t);
    lmc_tok_free(t);
}
