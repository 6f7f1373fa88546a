#!/usr/bin/env bash
# Multi-process evaluation with torchrun.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT on every node (docs/distributed.md).
source "$(dirname "$0")/_dist_env.sh"
dist_run test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
