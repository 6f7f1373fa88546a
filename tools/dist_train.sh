#!/usr/bin/env bash
# Multi-process / multi-node training with torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT on every node (docs/distributed.md).
# Without a GPU the processes use the gloo backend (tools/train.py handles it).
source "$(dirname "$0")/_dist_env.sh"
dist_run train.py "$2" "$1" --launcher pytorch "${@:3}"
