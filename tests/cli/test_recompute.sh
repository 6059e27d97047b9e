#!/usr/bin/env bash
# --recompute selective and full are bit-identical to none: the same losses,
# gradient norms and final weights, for GPT-2 (fused GELU epilogue, tied
# head) and Llama (SwiGLU, RMSNorm, rotary, GQA), in fp32 and bf16, while
# keeping fewer activations.
. "$(dirname "$0")/lib.sh"
make_shard "$T/train.bin" 20000 64
COMMON="--vocab 64 --max-seq 64 --batch 2 --seq 64 --data $T/train.bin --steps 4 --lr 3e-3 --threads 2 --quiet"
GPT="--model d6 --layers 3 --dim 64 --heads 2 $COMMON"
LLAMA="--model llama-15m --layers 3 --dim 64 --heads 4 --kv-heads 2 --ffn 96 $COMMON"
fields() { "$PY" -c "import json,sys; [print(r['step'], r['loss'], r['grad_norm']) for r in map(json.loads, open(sys.argv[1]))]" "$1"; }
for fam in GPT LLAMA; do
    for prec in fp32 bf16; do
        for rc in none selective full; do
            expect_ok "$fam $prec --recompute $rc" $LMC train ${!fam} --precision $prec --recompute $rc \
                --save "$T/$fam-$prec-$rc.st" --log "$T/$fam-$prec-$rc.jsonl"
        done
        for rc in selective full; do
            if cmp -s "$T/$fam-$prec-none.st" "$T/$fam-$prec-$rc.st" &&
                [ "$(fields "$T/$fam-$prec-none.jsonl")" = "$(fields "$T/$fam-$prec-$rc.jsonl")" ]; then
                echo "ok   $fam $prec: --recompute $rc gives the same bits as none (weights, losses, norms)"
            else
                echo "FAIL $fam $prec: --recompute $rc differs from none"; fails=$((fails + 1))
            fi
        done
    done
done
finish
