#!/usr/bin/env bash
# Training-time samples: one process draws them through the inference
# engine over the training model (KV cache; a prefill per token under
# --precision bf16), --tp, --pp and ZeRO-3 through the distributed forward
# by full recomputation; the token choice is the one library loop
# (lmc_generate). For the same seed every layout draws the same tokens,
# here past the --seq window (40 tokens, seq 16: the window slides), for
# GPT-2 and Llama, fp32 and bf16. --lr 0 keeps the weights of every layout
# those of the initialisation: under bf16, training noise alone (tp's
# reduction order) already changes later tokens, before this change as
# after it (the same global batch all the same: ZeRO-3's two replicas take
# batch 1 each).
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 20000 64
COMMON="--vocab 64 --max-seq 32 --seq 16 --data $T/train.bin --steps 4 --lr 0 --threads 1 --sample-every 2 --sample-tokens 40"
GPT="--model d6 --layers 2 --dim 32 --heads 4 $COMMON"
LLAMA="--model llama-15m --layers 2 --dim 64 --heads 4 --kv-heads 2 --ffn 96 $COMMON"

samples() { grep -E 'sample:' | sed 's/^.*sample: //'; }

for m in GPT LLAMA; do
    for prec in fp32 bf16; do
        args="${!m} --precision $prec --batch 2 --grad-accum 2"
        one=$($LMC train $args 2>&1 | samples)
        [ "$(echo "$one" | wc -l)" = 2 ] && [ "$(echo "$one" | head -1 | wc -w)" = 40 ] ||
            { echo "FAIL $m $prec: one process printed no samples of 40 tokens: '$one'"; fails=$((fails + 1)); continue; }
        for lay in "--tp 2" "--pp 2" "--zero 3 --batch 1"; do  # ZeRO-3: 2 replicas of batch 1
            got=$($MPIRUN -np 2 $LMC train $args $lay 2>&1 | samples)
            [ "$got" = "$one" ] && echo "ok   $m $prec: samples under $lay = one process (engine)" ||
                { echo "FAIL $m $prec $lay: '$got' vs one process '$one'"; fails=$((fails + 1)); }
        done
    done
done
finish
