/* cmd_train.c: `lmc train`: flags -> lmc_train_opts, events -> progress. */
#include "cli.h"
#include "lmc/train.h"
#include "progress.h"

#include <string.h>

typedef struct {
    lmc_progress p;
    int quiet;
} printer;

static void on_event(void *ctx, const lmc_train_event *ev)
{
    printer *pr = ctx;
    if (ev->rank != 0 || pr->quiet)
        return;
    char line[512], eta[32], el[32];
    switch (ev->kind) {
    case LMC_EV_START:
        fprintf(stderr, "%s\n", ev->text);
        break;
    case LMC_EV_STEP:
        lmc_format_duration(ev->eta_s, eta, sizeof eta);
        snprintf(line, sizeof line,
                 "step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %7.0f tok/s | MFU %5.1f%% | %6.0f ms | ETA %s",
                 ev->step, ev->steps, ev->loss, ev->lr, ev->grad_norm, ev->tokens_per_s, 100 * ev->mfu, ev->ms, eta);
        lmc_progress_show(&pr->p, ev->step, ev->steps, line);
        break;
    case LMC_EV_EVAL:
        lmc_progress_break(&pr->p);
        if (ev->val_bpb >= 0)
            fprintf(stderr, "step %5d | val loss %.4f | val %.4f bits/byte\n", ev->step, ev->val_loss, ev->val_bpb);
        else
            fprintf(stderr, "step %5d | val loss %.4f\n", ev->step, ev->val_loss);
        break;
    case LMC_EV_SAMPLE:
        lmc_progress_break(&pr->p);
        fprintf(stderr, "step %5d | sample: %s\n", ev->step, ev->text);
        break;
    case LMC_EV_SAVE:
        lmc_progress_break(&pr->p);
        fprintf(stderr, "step %5d | saved %s\n", ev->step, ev->text);
        break;
    case LMC_EV_DONE:
        lmc_progress_break(&pr->p);
        lmc_format_duration(ev->elapsed_s, el, sizeof el);
        fprintf(stderr, "done: %d steps, final loss %.4f, %s, peak memory %.0f MB\n", ev->step, ev->loss, el,
                (double)lmc_peak_rss() / 1e6);
        break;
    }
}

int lmc_cmd_train(int argc, char **argv)
{
    lmc_train_opts o;
    lmc_train_defaults(&o);
    long long batch = o.batch, seq = o.seq, accum = o.grad_accum, steps = o.steps, warmup = 0, seed = (long long)o.seed,
              threads = 0, layers = 0, heads = 0, kv = 0, dim = 0, ffn = 0, vocab = 0, maxseq = 0, save_every = 0,
              keep = o.keep, eval_every = 0, eval_batches = o.eval_batches, sample_every = 0,
              sample_tokens = o.sample_tokens, zero = 0, tp = 1, pp = 1, vpp = 1, ep = 1;
    int no_shuffle = 0, quiet = 0, sp = 0;
    long long check_every = 0;
    cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "preset (d6 d12 d24 d36 d48, llama-15m ...) or config.json"},
        {"init", CLI_STR, &o.init, "start from weights (.safetensors or HF folder)"},
        {"layers", CLI_INT, &layers, "override the number of layers", 1, 1024},
        {"heads", CLI_INT, &heads, "override the number of attention heads", 1, 1024},
        {"kv-heads", CLI_INT, &kv, "override the number of key/value heads (GQA)", 1, 1024},
        {"dim", CLI_INT, &dim, "override the model width", 1, 65536},
        {"ffn", CLI_INT, &ffn, "override the MLP hidden size", 1, 1 << 20},
        {"vocab", CLI_INT, &vocab, "override the vocabulary size", 2, 1 << 24},
        {"max-seq", CLI_INT, &maxseq, "override the maximum sequence length", 1, 1 << 20},
        {"data", CLI_STR, &o.data, "training shards (glob, comma-separated globs)"},
        {"val-data", CLI_STR, &o.val_data, "validation shards (glob)"},
        {"tokenizer", CLI_STR, &o.tokenizer, "tokenizer folder (samples as text, val bits per byte)"},
        {"batch", CLI_INT, &batch, "sequences per micro-batch (B)", 1, 1 << 20},
        {"seq", CLI_INT, &seq, "tokens per sequence (T)", 1, 1 << 20},
        {"grad-accum", CLI_INT, &accum, "micro-batches per step (K)", 1, 1 << 20},
        {"steps", CLI_INT, &steps, "optimizer steps", 0, 1 << 30},
        {"lr", CLI_FLOAT, &o.lr, "peak learning rate", 0, 10},
        {"warmup", CLI_INT, &warmup, "linear warmup steps", 0, 1 << 30},
        {"schedule", CLI_STR, &o.schedule, "cosine | linear | constant"},
        {"min-lr-frac", CLI_FLOAT, &o.min_lr_frac, "final lr as a fraction of --lr", 0, 1},
        {"weight-decay", CLI_FLOAT, &o.weight_decay, "AdamW weight decay (2-D tensors only)", 0, 10},
        {"beta1", CLI_FLOAT, &o.beta1, "AdamW beta1", 0, 0.999999},
        {"beta2", CLI_FLOAT, &o.beta2, "AdamW beta2", 0, 0.999999},
        {"eps", CLI_FLOAT, &o.eps, "AdamW epsilon", 0, 1},
        {"clip", CLI_FLOAT, &o.clip, "clip the global gradient norm (0 = off)", 0, 1e9},
        {"seed", CLI_INT, &seed, "seed for init and data order", 0, 1LL << 62},
        {"no-shuffle", CLI_BOOL, &no_shuffle, "read the data in order"},
        {"threads", CLI_INT, &threads, "CPU threads (default: all cores)", 1, 4096},
        {"device", CLI_STR, &o.device, "cpu | cuda | cuda:N | npu (per rank: a job may mix them)"},
        {"precision", CLI_STR, &o.precision, "fp32 | bf16 (bf16 matmul inputs, fp32 master weights)"},
        {"dist", CLI_STR, &o.dist, "auto | single | mpi | nccl | hccl (auto: mixed chip kinds get hier)"},
        {"zero", CLI_INT, &zero, "ZeRO stage: 1 shards AdamW state, 2 + gradients, 3 + parameters", 0, 3},
        {"tp", CLI_INT, &tp, "tensor-parallel degree: groups of this many consecutive ranks split every layer",
         1, 4096},
        {"sp", CLI_BOOL, &sp, "sequence parallelism: norms and the residual stream split by rows over the --tp group"},
        {"pp", CLI_INT, &pp, "pipeline stages: each holds consecutive layers, 1F1B over --grad-accum micro-batches",
         1, 4096},
        {"ep", CLI_INT, &ep, "expert parallelism: groups of this many consecutive data-parallel ranks split the "
         "experts, tokens exchanged by all-to-all", 1, 4096},
        {"moe-bias-step", CLI_FLOAT, &o.moe_bias_step, "DeepSeek-V3's aux-loss-free balancing: each step moves "
         "every expert's selection bias by this against its load (default: the config's moe_bias_step)", 0, 1},
        {"pp-layers", CLI_STR, &o.pp_layers, "layers per pipeline stage, e.g. 7,5 (default: balanced by cost)"},
        {"vpp", CLI_INT, &vpp, "interleaved pipeline: chunks of layers per rank (Megatron's virtual stages)", 1, 64},
        {"recompute", CLI_STR, &o.recompute, "none | selective | full: activations recomputed in backward"},
        {"balance", CLI_STR, &o.balance, "off | auto: micro-batches per rank by speed"},
        {"check-every", CLI_INT, &check_every, "the ranks compare a hash of their weights every N steps (a rank "
         "that drifted is named)", 0, 1 << 30},
        {"save", CLI_STR, &o.save, "final weights (.safetensors, or a folder for HF layout)"},
        {"max-shard-mb", CLI_FLOAT, &o.max_shard_mb, "--save into a folder: HF sharded files of at most this size",
         0.001, 1e9},
        {"out", CLI_STR, &o.out_dir, "checkpoint folder"},
        {"save-every", CLI_INT, &save_every, "checkpoint every N steps", 0, 1 << 30},
        {"keep", CLI_INT, &keep, "checkpoints to keep (0 = all)", 0, 1 << 20},
        {"resume", CLI_STR, &o.resume, "continue from a checkpoint folder (or --out folder)"},
        {"eval-every", CLI_INT, &eval_every, "validation every N steps", 0, 1 << 30},
        {"eval-batches", CLI_INT, &eval_batches, "validation micro-batches", 1, 1 << 20},
        {"sample-every", CLI_INT, &sample_every, "print a sample every N steps", 0, 1 << 30},
        {"sample-tokens", CLI_INT, &sample_tokens, "tokens per sample", 1, 1 << 20},
        {"log", CLI_STR, &o.log, "JSON Lines metrics, one object per step"},
        {"report", CLI_STR, &o.report, "HTML charts of --log, rewritten at each evaluation and at the end"},
        {"quiet", CLI_BOOL, &quiet, "no progress output"},
        {NULL},
    };
    cli_spec spec = {.cmd = "train", .synopsis = "--model PRESET|--init FILE|--resume DIR --data GLOB [flags]",
                     .about = "Trains a GPT-2 or Llama-family model on llm.c token shards with AdamW.",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s)
        return cli_exit(&spec, s);
    o.batch = (int)batch, o.seq = (int)seq, o.grad_accum = (int)accum, o.steps = (int)steps;
    o.warmup = (int)warmup, o.seed = (uint64_t)seed, o.threads = (int)threads, o.shuffle = !no_shuffle;
    o.layers = (int)layers, o.heads = (int)heads, o.kv_heads = (int)kv, o.dim = (int)dim, o.ffn = (int)ffn;
    o.vocab = (int)vocab, o.max_seq = (int)maxseq, o.save_every = (int)save_every, o.keep = (int)keep;
    o.eval_every = (int)eval_every, o.eval_batches = (int)eval_batches, o.sample_every = (int)sample_every;
    o.sample_tokens = (int)sample_tokens, o.zero = (int)zero;
    o.tp = (int)tp, o.pp = (int)pp, o.vpp = (int)vpp, o.sp = sp, o.ep = (int)ep;
    o.check_every = (int)check_every;
    if (o.init && (layers || heads || kv || dim || ffn || vocab || maxseq))
        return cli_fail("train", lmc_err(LMC_EINVAL, "--layers/--heads/--dim/... override a --model preset; "
                                                     "--init takes the model from the file"));
    printer pr = {.quiet = quiet};
    lmc_progress_init(&pr.p);
    return cli_fail("train", lmc_train(&o, on_event, &pr));
}
