#!/usr/bin/env python3
"""One PyTorch training step, timed; run without and with the shim by bench/run_bench.sh.

A small conv net (4 conv-BN-ReLU blocks + linear) on a fixed random batch (default 64 x 3 x 64 x 64), SGD
with momentum, fixed seed. Each step is fenced by torch.cuda.synchronize() on both sides and timed
with perf_counter; the first --warmup steps (cuDNN/cuBLAS set-up, allocator growth) are dropped.

Prints:  RESULT step_ms_median=<ms> step_ms_p10=<ms> step_ms_p90=<ms> steps=<n> loss=<last loss>
Exits 77 when PyTorch or a GPU is missing (the suite reports SKIP).
"""

import argparse
import statistics
import sys
import time

from torch_gpu import cuda_torch


def build_model(nn, w):
    def block(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)]

    return nn.Sequential(*block(3, w, 1), *block(w, 2 * w, 2), *block(2 * w, 4 * w, 2),
                         *block(4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image", type=int, default=64, help="input height and width")
    ap.add_argument("--width", type=int, default=64, help="channels of the first block")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch = cuda_torch()
    if torch is None:
        return 77
    nn = torch.nn

    torch.manual_seed(a.seed)
    # Same algorithms every run: benchmark mode could pick different kernels in the two processes.
    torch.backends.cudnn.benchmark = False
    dev = torch.device("cuda")
    model = build_model(nn, a.width).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(a.batch, 3, a.image, a.image, device=dev)
    y = torch.randint(0, 10, (a.batch,), device=dev)

    times, loss = [], None
    for i in range(a.warmup + a.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    q = statistics.quantiles(times, n=10)
    print(f"INFO torch={torch.__version__} device={torch.cuda.get_device_name(0).replace(' ', '_')}")
    print(f"RESULT step_ms_median={statistics.median(times):.4f} step_ms_p10={q[0]:.4f} "
          f"step_ms_p90={q[-1]:.4f} steps={len(times)} loss={loss.item():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
