/* commands.h: every lmc subcommand. Add a line here and a tools/cmd_NAME.c. */
#ifndef LMC_COMMANDS_H
#define LMC_COMMANDS_H

#define LMC_COMMANDS(X)                                                              \
    X(train, "train a model on token shards")                                        \
    X(sample, "sample from a model (simple generate, full recompute)")               \
    X(generate, "generate text with the KV-cache engine, streaming")                 \
    X(serve, "OpenAI-compatible HTTP server")                                        \
    X(tokenizer, "train a byte-level BPE tokenizer (lmc tokenizer train ...)")       \
    X(encode, "text on stdin -> token ids on stdout")                                \
    X(decode, "token ids on stdin -> text on stdout")                                \
    X(tokenize, "text files -> train/val token shards")                              \
    X(plan, "memory fit, parallel layout and time to train on a fleet")              \
    X(export, "a model and its tokenizer as GGUF for llama.cpp")                     \
    X(devices, "backends (cpu, cuda, npu, plugins): usable here, and why not")       \
    X(report, "training logs as an HTML page of charts (loss, speed, balance)")      \
    X(launch, "run lmc train under mpirun; restart it on failures and host changes")  \
    X(dump, "debug: forward/backward of one batch, tensors to safetensors")

/* weak: a command whose file is not built is simply not offered */
#define X(name, help) __attribute__((weak)) int lmc_cmd_##name(int argc, char **argv);
LMC_COMMANDS(X)
#undef X

#endif
