#!/usr/bin/env bash
# lmc_npu.sh: lmc with --device npu added to the commands that compute
# (train, dump), so tests written for one binary (tests/oracle, which run
# "$LMC <command> ...") run on the Ascend backend: LMC=tests/ascend/lmc_npu.sh
# with LMC_REAL naming the lmc to run and LMC_ASCEND_LIBDIR the libraries
# (the mock's, or CANN's).
case "${1:-}" in
train | dump) exec "${LMC_REAL:?set LMC_REAL to the lmc binary}" "$@" --device "${LMC_NPU_DEVICE:-npu}" ;;
*) exec "${LMC_REAL:?set LMC_REAL to the lmc binary}" "$@" ;;
esac
