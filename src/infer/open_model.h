/* open_model.h: an engine over a model the library already holds (the
 * trainer's, for its samples). */
#ifndef LMC_INFER_OPEN_MODEL_H
#define LMC_INFER_OPEN_MODEL_H

#include "lmc/infer.h"
#include "model/model.h"

/* Borrows m (one process, fp32 weights: o->quant none, o->tp 1): the
 * engine reads m's parameters as they are, at m's precision, and
 * lmc_engine_close leaves m open. m must outlive the engine. */
lmc_status lmc_engine_open_model(lmc_engine **out, lmc_model *m, const lmc_engine_opts *o);

#endif
