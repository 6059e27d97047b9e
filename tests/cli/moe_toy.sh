# moe_toy.sh: the balancing tests' skewed mixture of experts (sourced after
# lib.sh by tests/cli/test_moe_balance.sh, test_moe_bias_weights.sh and
# tests/mpi/test_mpi_moe_bias.sh).

# skew_toy_config PATH VOCAB: the balancing tests' mixture of experts (2
# layers of dim 32, a sigmoid router to 4 experts, top 2, no aux loss)
skew_toy_config() {
    cat >"$1" <<EOF
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 32, "intermediate_size": 24, "max_position_embeddings": 32, "vocab_size": $2,
 "num_local_experts": 4, "num_experts_per_tok": 2, "output_router_logits": false, "scoring_func": "sigmoid"}
EOF
}

# skew_router DIR DIM LAYERS: a mixture of experts saved in DIR (a folder)
# made to prefer expert 0: a direction every token shares (added to the
# token embeddings) that each layer's router row for expert 0 points along
skew_router() {
    "$PY" - "$1" "$2" "$3" "$(dirname "$0")/../oracle" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[4])
from lmc_util import st_read, st_write
path, C, L = sys.argv[1] + "/model.safetensors", int(sys.argv[2]), int(sys.argv[3])
t, meta = st_read(path)
rng = np.random.default_rng(0)
v = rng.standard_normal(C).astype(np.float32)
v /= np.linalg.norm(v)
t["model.embed_tokens.weight"] += 0.5 * v
for l in range(L):
    t["model.layers.%d.block_sparse_moe.gate.weight" % l][0] += 4.0 * v
st_write(path, t, meta)
PYEOF
}
