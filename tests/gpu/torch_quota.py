#!/usr/bin/env python3
"""PyTorch under a memory quota (issue 2 acceptance); run once per allocator.

    xpu-run --mem 4GiB -- python3 torch_quota.py --quota 4GiB
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True xpu-run --mem 4GiB -- python3 torch_quota.py --quota 4GiB
    python3 torch_quota.py --quota none            # baseline, no shim

With Q = --quota: torch.cuda.mem_get_info() total == Q, free <= Q; device total_memory == Q; one tensor
of Q + chunk raises torch.OutOfMemoryError (the caching allocator frees its cache and retries first,
so the shim must deny with exactly CUDA_ERROR_OUT_OF_MEMORY, or PyTorch raises a generic error);
chunks until OutOfMemoryError stay <= Q, max_memory_reserved <= Q, reported usage <= Q; after
del + empty_cache() the same chunks fit again and a matmul still runs.
"""

import os
import sys

from pyreport import GIB, Report, arg_parser, first_line, hold


def oom_class(torch):
    return getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def try_alloc(torch, nbytes):
    """Returns (tensor or None, outcome, message); outcome is ok, OutOfMemoryError or the error class."""
    try:
        t = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        t.fill_(0xA5)  # commit the pages, so the outside observer sees them
        return t, "ok", ""
    except oom_class(torch) as e:
        return None, "OutOfMemoryError", first_line(e)
    except Exception as e:  # noqa: BLE001 - any other error is exactly what we want to report
        return None, f"{type(e).__name__}", first_line(e)


def matmul_ok(torch):
    """A cuBLAS call still works: (True, '') or (False, error)."""
    try:
        a = torch.ones(512, 512, device="cuda")
        value = float((a @ a).sum().item())
        return value == 512.0 ** 3, f"sum={value}"
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {first_line(e)}"


def main():
    args = arg_parser(__doc__.splitlines()[0]).parse_args()
    r = Report()
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        r.skip(f"torch not importable: {first_line(e)}")
    r.info("torch_version", torch.__version__)
    conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF") or "default"
    r.info("alloc_conf", conf)
    if not r.check("cuda_available", torch.cuda.is_available(), True, torch.cuda.is_available()):
        r.finish()

    Q, chunk = args.quota, args.chunk
    q = Q is not None
    # Load cuBLAS and the first kernels now: their module memory is part of the process footprint.
    ok, msg = matmul_ok(torch)
    r.check("matmul_at_start", ok, True, ok, msg)
    free0, total0 = torch.cuda.mem_get_info()
    r.check_if(q, "mem_get_info_total_eq_quota", total0 == Q, Q, total0)
    r.check_if(q, "mem_get_info_free_le_quota", q and free0 <= Q, f"<={Q}", free0)
    props_total = torch.cuda.get_device_properties(0).total_memory
    r.check_if(q, "device_total_memory_eq_quota", props_total == Q, Q, props_total)

    t = None
    if q:
        t, outcome, msg = try_alloc(torch, Q + chunk)
        r.check("over_quota_raises_OutOfMemoryError", outcome == "OutOfMemoryError",
                "OutOfMemoryError", outcome, msg)
        t = None

    limit = Q + 4 * chunk if q else args.max_fill  # the cap only stops a broken shim
    tensors, outcome, msg, max_used = [], "ok", "", 0
    while (len(tensors) + 1) * chunk <= limit:
        t, outcome, msg = try_alloc(torch, chunk)
        if t is None:
            break
        tensors.append(t)
        f, tot = torch.cuda.mem_get_info()
        max_used = max(max_used, tot - f)
    torch.cuda.synchronize()
    filled = len(tensors) * chunk
    max_reserved = torch.cuda.max_memory_reserved()
    if q:
        r.check("fill_stops_with_OutOfMemoryError", outcome == "OutOfMemoryError",
                "OutOfMemoryError", outcome, msg)
        r.check("fill_bytes_le_quota", 0 < filled <= Q, f"<={Q}", filled)
        usable_min = max(Q - GIB, 0)
        r.check("fill_bytes_usable", filled >= usable_min, f">={usable_min}", filled,
                "context overhead counts toward the quota")
        r.check("max_memory_reserved_le_quota", max_reserved <= Q, f"<={Q}", max_reserved)
        r.check("reported_used_le_quota", max_used <= Q, f"<={Q}", max_used,
                "max of mem_get_info total-free while filling")
    else:
        r.check("fill_allocates", filled > 0, ">0", filled)
        r.info("max_memory_reserved", max_reserved)
    try:
        segs = torch.cuda.memory_snapshot()
        r.info("expandable_segments_in_use", any(s.get("is_expandable", False) for s in segs))
    except Exception as e:  # noqa: BLE001 - snapshot format is informative only
        r.info("expandable_segments_in_use", "unknown", first_line(e))
    hold(args.hold_ms)

    n = len(tensors)
    del tensors, t
    torch.cuda.empty_cache()
    r.info("memory_reserved_after_empty_cache", torch.cuda.memory_reserved())
    free1, _ = torch.cuda.mem_get_info()
    r.check("free_recovers_after_empty_cache", free1 + chunk >= free0, f">={free0 - chunk}", free1)

    again = []
    for _ in range(n):
        t, outcome, msg = try_alloc(torch, chunk)
        if t is None:
            break
        again.append(t)
    r.check("realloc_after_free", len(again) == n, f"{n}chunks", f"{len(again)}chunks", msg)
    del again, t
    torch.cuda.empty_cache()
    ok, msg = matmul_ok(torch)
    r.check("matmul_after_realloc", ok, True, ok, msg)
    r.finish()


if __name__ == "__main__":
    sys.exit(main())
