#!/usr/bin/env python3
"""ResNet-50 load for the compute time-slice benchmarks (bench/README.md, bench/run_compute.sh).

ResNet-50 is written out here in plain torch.nn (torchvision may be missing on the GPU machine):
bottleneck blocks [3, 4, 6, 3], widths 64-128-256-512 (x4 expansion), 1000 classes, synthetic data.

    resnet50.py train --seconds 20 [--batch 64] [--amp]
        back-to-back training steps; RESULT images_per_s, step p50/p99 (ms)
    resnet50.py infer --seconds 20 --rate 100 [--amp]
        batch-1 inference on an open-loop schedule of --rate requests/s (a late request does not
        delay the next one); latency = completion - scheduled time; RESULT p50/p99/max (ms),
        achieved rate, late requests

Exits 77 when PyTorch or a GPU is missing.
"""

import argparse
import os
import statistics
import sys
import time


def resnet50(nn):
    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * self.expansion
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
            self.skip = None
            if stride != 1 or cin != cout:
                self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            identity = x if self.skip is None else self.skip(x)
            return self.relu(self.body(x) + identity)

    layers, cin = [], 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
            cin = width * Bottleneck.expansion
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1), *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(cin, 1000))


def pct(sorted_values, p):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def train(torch, model, a):
    dev = torch.device("cuda")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(a.batch, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (a.batch,), device=dev)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.amp):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(5):  # warm-up: cuDNN algorithm choice, allocator growth
        step()
    torch.cuda.synchronize()
    times, t_start = [], time.perf_counter()
    while time.perf_counter() - t_start < a.seconds:
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    elapsed = time.perf_counter() - t_start
    s = sorted(times)
    print(f"RESULT mode=train steps={len(times)} seconds={elapsed:.2f} batch={a.batch} "
          f"images_per_s={len(times) * a.batch / elapsed:.1f} step_ms_p50={statistics.median(s):.2f} "
          f"step_ms_p99={pct(s, 0.99):.2f} amp={int(a.amp)}")


def infer(torch, model, a):
    dev = torch.device("cuda")
    x = torch.randn(1, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
    model.eval()

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.amp):
            model(x)
        torch.cuda.synchronize()

    for _ in range(20):
        run()
    period = 1.0 / a.rate
    lat, late, t0 = [], 0, time.perf_counter()
    i = 0
    while True:
        due = t0 + i * period
        if due - t0 >= a.seconds:
            break
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif i:
            late += 1
        run()
        lat.append((time.perf_counter() - due) * 1e3)
        i += 1
    elapsed = time.perf_counter() - t0
    s = sorted(lat)
    print(f"RESULT mode=infer requests={len(lat)} seconds={elapsed:.2f} rate={a.rate:.1f} "
          f"achieved_per_s={len(lat) / elapsed:.1f} late={late} p50_ms={statistics.median(s):.2f} "
          f"p99_ms={pct(s, 0.99):.2f} max_ms={s[-1]:.2f} amp={int(a.amp)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("train", "infer"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rate", type=float, default=100.0, help="inference requests per second")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    try:
        import torch
        from torch import nn
    except Exception as e:  # noqa: BLE001
        print(f"SKIP torch not importable: {e}")
        return 77
    if not torch.cuda.is_available():
        print("SKIP no CUDA device visible to torch")
        return 77
    print(f"INFO pid={os.getpid()}", flush=True)
    torch.manual_seed(a.seed)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    model = resnet50(nn).to("cuda").to(memory_format=torch.channels_last)
    (train if a.mode == "train" else infer)(torch, model, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
