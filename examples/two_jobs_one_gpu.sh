#!/usr/bin/env bash
# Two independent jobs share one GPU; neither can make the other run out of memory.
xpu-run --mem 20GiB -- python train_a.py &
xpu-run --mem 40GiB -- python train_b.py &
wait
