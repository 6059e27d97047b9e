#!/usr/bin/env bash
# --recompute selective and full are bit-identical to none: the same losses,
# gradient norms and final weights, for GPT-2 (fused GELU epilogue, tied
# head), Llama (SwiGLU, RMSNorm, rotary, GQA) and a mixture of experts
# (Mixtral's router with its load-balancing loss, a shared expert, a dense
# first layer), in fp32 and bf16, while keeping fewer activations.
. "$(dirname "$0")/lib.sh"
make_shard "$T/train.bin" 20000 64
COMMON="--vocab 64 --max-seq 64 --batch 2 --seq 64 --data $T/train.bin --steps 4 --lr 3e-3 --threads 2 --quiet"
GPT="--model d6 --layers 3 --dim 64 --heads 2 $COMMON"
LLAMA="--model llama-15m --layers 3 --dim 64 --heads 4 --kv-heads 2 --ffn 96 $COMMON"
cat >"$T/moe.json" <<EOF
{"model_type": "mixtral", "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 64, "intermediate_size": 48, "max_position_embeddings": 64, "vocab_size": 64,
 "num_local_experts": 4, "num_experts_per_tok": 2, "output_router_logits": true, "router_aux_loss_coef": 0.02,
 "n_shared_experts": 1, "first_k_dense_replace": 1, "dense_intermediate_size": 96}
EOF
MOE="--model $T/moe.json $COMMON"
fields() { "$PY" -c "import json,sys; [print(r['step'], r['loss'], r['grad_norm'], r.get('aux_loss')) for r in map(json.loads, open(sys.argv[1]))]" "$1"; }
for fam in GPT LLAMA MOE; do
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
