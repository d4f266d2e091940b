#!/usr/bin/env python3
"""ResNet-50 load for the compute time-slice benchmarks (bench/README.md, bench/run_compute.sh).

ResNet-50 is written out here in plain torch.nn (torchvision is not used, it may be missing on the
GPU machine): bottleneck blocks [3, 4, 6, 3], widths 64-128-256-512 (x4 expansion), 1000 classes,
synthetic data, channels-last, TF32 on.

    resnet50.py train [--batch 64] [--amp] ...
        back-to-back SGD steps, each fenced by torch.cuda.synchronize(); RESULT per window:
        it_per_s, images_per_s, step p50/p99 (ms)
    resnet50.py infer --rate 100 ...
        batch-1 inference on an open-loop schedule of --rate requests/s (a late request does not
        delay the next one); latency = completion - scheduled time; RESULT per window: p50/p99/max
        (ms), achieved rate, late requests; with --latency-out FILE, also every request's latency
        (a "LATENCY window=W tag=TAG ms=..." line per window, appended)

Timeline (shared with compute_loop): import, model, warm-up -> touch --ready-file -> wait for the
start instant S (the first number written into --go-file, a CLOCK_REALTIME epoch; without one
S = now) -> for each active window A:B of --windows (seconds after S; default 0:--seconds) run from
S+A to S+B and measure from S+A+--settle to S+B; idle (no GPU work) between windows. Steps count in
a window when they complete inside it; it_per_s = (completions - 1) / (last - first completion).
Requests count when they are scheduled inside it.

A window may carry a tag, A:B:TAG (letters, digits, _ . -): its RESULT line then says tag=TAG
(run_compute.sh's priority rounds tag each window ROUND.PHASE). An optional second number in the
go file, END (seconds after S), is a cut-off: a window that would end after S+END is not run, and
its RESULT line says skipped=time_budget instead of numbers (the script's time budget decided at
the start instant how many rounds fit).

cuDNN autotuning is off unless --cudnn-benchmark: the algorithm choice must not depend on what else
ran on the GPU while this process warmed up, since runs in different processes are compared.
Exits 77 when PyTorch or a GPU is missing.
"""

import argparse
import gc
import os
import re
import statistics
import sys
import time

from torch_gpu import cuda_torch


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


def parse_windows(text):
    """Parses "A:B[:TAG],...": sorted [(A, B, TAG or None)]; windows must not overlap."""
    windows = []
    for part in text.split(","):
        fields = part.split(":")
        if len(fields) not in (2, 3):
            raise ValueError(f"bad window {part!r} (A:B or A:B:TAG)")
        a, b = float(fields[0]), float(fields[1])
        tag = fields[2] if len(fields) == 3 else None
        if b <= a or a < 0:
            raise ValueError(f"bad window {part!r}")
        if tag is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", tag):
            raise ValueError(f"bad window tag {tag!r} (letters, digits, _ . -)")
        windows.append((a, b, tag))
    windows.sort(key=lambda w: w[0])
    for (_, b0, _), (a1, _, _) in zip(windows, windows[1:]):
        if a1 < b0:
            raise ValueError(f"windows overlap ({text!r})")
    return windows


def start_instant(a):
    """Touch the ready file, then wait for the go file: (S, END or None); None on a timeout.

    S is the start instant (time.time() epoch); END, when the file has a second number, the cut-off
    in seconds after S: windows that would end later are not run."""
    if a.ready_file:
        with open(a.ready_file, "w", encoding="utf-8"):
            pass
    if not a.go_file:
        return time.time(), None
    deadline = time.time() + a.go_timeout
    while time.time() < deadline:
        try:
            with open(a.go_file, encoding="utf-8") as f:
                words = f.read().split()
            s = float(words[0])
            if s > 0:
                return s, (float(words[1]) if len(words) > 1 else None)
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.005)
    return None


def window_head(mode, w, wa, wb, tag):
    return f"RESULT mode={mode} window={w}" + (f" tag={tag}" if tag else "") + f" from_s={wa:g} to_s={wb:g}"


def cut_off(mode, w, wa, wb, tag, end):
    """True (and the skip printed) when window w ends after the go file's cut-off."""
    if end is None or wb <= end + 1e-6:
        return False
    print(f"{window_head(mode, w, wa, wb, tag)} skipped=time_budget cutoff_s={end:g}", flush=True)
    return True


def sleep_until(t):
    """time.perf_counter() domain; coarse sleep, then a short spin."""
    while True:
        left = t - time.perf_counter()
        if left <= 0:
            return
        time.sleep(left - 0.001 if left > 0.002 else 0)


def train(torch, model, a, start, windows):
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

    for _ in range(a.warmup_steps):  # warm-up: cuDNN/cuBLAS handles, allocator growth
        step()
    torch.cuda.synchronize()
    go = start(a)
    if go is None:
        print("RESULT mode=train error=no_start_signal")
        return 1
    s, end = go
    base = s - time.time() + time.perf_counter()  # S in the perf_counter domain
    for w, (wa, wb, tag) in enumerate(windows):
        if cut_off("train", w, wa, wb, tag, end):
            continue
        sleep_until(base + wa)
        m0, m1 = base + wa + a.settle, base + wb
        done, times = [], []
        gc.disable()
        while time.perf_counter() < m1:
            t0 = time.perf_counter()
            step()
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            if m0 <= t1 < m1:
                done.append(t1)
                times.append((t1 - t0) * 1e3)
        gc.enable()
        span = done[-1] - done[0] if len(done) > 1 else 0.0
        it_s = (len(done) - 1) / span if span > 0 else 0.0
        st = sorted(times)
        print(f"{window_head('train', w, wa, wb, tag)} steps={len(done)} "
              f"measured_s={m1 - m0:.2f} batch={a.batch} it_per_s={it_s:.3f} "
              f"images_per_s={it_s * a.batch:.1f} "
              f"step_ms_p50={statistics.median(st) if st else 0:.2f} step_ms_p99={pct(st, 0.99):.2f} "
              f"amp={int(a.amp)} start={s:.3f}", flush=True)
    return 0


def infer(torch, model, a, start, windows):
    dev = torch.device("cuda")
    x = torch.randn(1, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
    model.eval()

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.amp):
            model(x)
        torch.cuda.synchronize()

    for _ in range(a.warmup_steps * 4):
        run()
    go = start(a)
    if go is None:
        print("RESULT mode=infer error=no_start_signal")
        return 1
    s, end = go
    base = s - time.time() + time.perf_counter()
    period = 1.0 / a.rate
    for w, (wa, wb, tag) in enumerate(windows):
        if cut_off("infer", w, wa, wb, tag, end):
            continue
        t0, m0, m1 = base + wa, base + wa + a.settle, base + wb
        lat, late, i = [], 0, 0
        gc.disable()
        while True:
            due = t0 + i * period
            if due >= m1:
                break
            now = time.perf_counter()
            if now < due:
                sleep_until(due)
            elif i and due >= m0:
                late += 1
            run()
            if due >= m0:
                lat.append((time.perf_counter() - due) * 1e3)
            i += 1
        gc.enable()
        sl = sorted(lat)
        print(f"{window_head('infer', w, wa, wb, tag)} requests={len(lat)} "
              f"measured_s={m1 - m0:.2f} rate={a.rate:.1f} achieved_per_s={len(lat) / (m1 - m0):.1f} "
              f"late={late} p50_ms={statistics.median(sl) if sl else 0:.3f} p99_ms={pct(sl, 0.99):.3f} "
              f"max_ms={sl[-1] if sl else 0:.3f} amp={int(a.amp)} start={s:.3f}", flush=True)
        if a.latency_out:
            # Every request's latency, so that percentiles can be taken over all rounds' requests
            # together (one window's p99 is only its ~6th worst request).
            with open(a.latency_out, "a", encoding="utf-8") as f:
                f.write(f"LATENCY window={w} tag={tag or '-'} ms={','.join(f'{v:.3f}' for v in lat)}\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("train", "infer"))
    ap.add_argument("--seconds", type=float, default=20.0, help="one window 0:SECONDS (no --windows)")
    ap.add_argument("--windows", default="",
                    help="active windows A:B[:TAG][,A:B[:TAG]...], seconds after the start")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds at each window's start not measured")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rate", type=float, default=100.0, help="inference requests per second")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN autotune (off: heuristics)")
    ap.add_argument("--warmup-steps", type=int, default=5)
    ap.add_argument("--ready-file", default="")
    ap.add_argument("--go-file", default="")
    ap.add_argument("--go-timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-out", default="",
                    help="infer: append each window's request latencies (ms) to this file")
    a = ap.parse_args()
    try:
        windows = parse_windows(a.windows) if a.windows else [(0.0, a.seconds, None)]
    except ValueError as e:
        ap.error(str(e))
    torch = cuda_torch()
    if torch is None:
        return 77
    nn = torch.nn
    print(f"INFO pid={os.getpid()} torch={torch.__version__}", flush=True)
    torch.manual_seed(a.seed)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    model = resnet50(nn).to("cuda").to(memory_format=torch.channels_last)
    return (train if a.mode == "train" else infer)(torch, model, a, start_instant, windows)


if __name__ == "__main__":
    sys.exit(main())
