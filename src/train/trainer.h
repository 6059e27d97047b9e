/* trainer.h: the training job's state, shared by trainer.c (setup and the
 * step loop) and evaluate.c (validation and samples). */
#ifndef LMC_TRAINER_H
#define LMC_TRAINER_H

#include "dist/comm.h"
#include "lmc/data.h"
#include "lmc/tokenizer.h"
#include "lmc/train.h"
#include "model/model.h"
#include "train/optim.h"

typedef struct {
    const lmc_train_opts *o;
    lmc_train_cb cb;
    void *ctx;
    lmc_comm *comm;
    lmc_backend *be;
    lmc_model_config cfg;
    lmc_model *m;
    lmc_optim opt;
    lmc_tokens train, val;
    int have_val;
    lmc_tokenizer *tok;
    int *inputs, *targets; /* host (B,T) */
    int step;              /* optimizer steps done */
    uint64_t consumed;     /* training sequences consumed by all ranks */
    uint64_t seed;
    int shuffle;
    double flops_per_token, peak_flops, start_time;
    FILE *log;
    float last_loss;
} lmc_trainer;

void lmc_trainer_emit(lmc_trainer *tr, lmc_train_event *ev);
lmc_status lmc_trainer_eval(lmc_trainer *tr, float *val_loss, float *val_bpb);
lmc_status lmc_trainer_sample(lmc_trainer *tr, lmc_sb *text);

#endif
