#!/usr/bin/env bash
# The planner's accuracy on this machine: lmc plan --calibrate trains GPT-2
# d6 and d12 for a few steps with `lmc train` and prints the predicted step
# time beside the measured one; the goal is within 15%. A timing check, so it
# lives here and not in the test suite: run it on a quiet machine.
# Usage: bash bench/bench_plan_calibrate.sh [threads]
cd "$(dirname "$0")/.."
LMC=${LMC:-build/lmc}
exec $LMC plan --calibrate --model d6,d12 --batch 2 --seq 128 --steps 4 --skip 1 --threads "${1:-1}" --tolerance 0.15
