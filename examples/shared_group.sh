#!/usr/bin/env bash
# A launcher and its workers share one 30 GiB quota: the group is the unit of the quota.
xpu-run --mem 30GiB --group sweep-17 -- torchrun --nproc_per_node 1 train.py
# Processes started separately join the same group by name:
XPU_GROUP=sweep-17 XPU_MEM_LIMIT=30GiB LD_PRELOAD=/opt/xpushim/lib/libxpushim.so python eval.py
