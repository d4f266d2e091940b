#!/usr/bin/env python3
"""CuPy under a memory quota (issue 2 acceptance).

    xpu-run --mem 4GiB -- python3 cupy_quota.py --quota 4GiB
    python3 cupy_quota.py --quota none             # baseline, no shim

CuPy reaches the driver through its static cudart (cuGetProcAddress) and through ctypes dlsym of
exported names. With Q = --quota: runtime.memGetInfo() total == Q, free <= Q; totalGlobalMem == Q;
an array of Q + chunk raises cupy.cuda.memory.OutOfMemoryError (the pool frees its cache and retries
first); chunks until that error stay <= Q with the pool's total_bytes() <= Q; after freeing and
free_all_blocks() the same chunks fit again and a kernel still runs.
"""

import sys

from pyreport import GIB, Report, arg_parser, first_line, hold


def try_alloc(cupy, nbytes):
    """Returns (array or None, outcome, message); outcome is ok, OutOfMemoryError or the error class."""
    try:
        a = cupy.empty(nbytes, dtype=cupy.uint8)
        a.fill(0)  # a memset: commits the pages without compiling a kernel
        return a, "ok", ""
    except cupy.cuda.memory.OutOfMemoryError as e:
        return None, "OutOfMemoryError", first_line(e)
    except Exception as e:  # noqa: BLE001 - any other error is exactly what we want to report
        return None, type(e).__name__, first_line(e)


def main():
    args = arg_parser(__doc__.splitlines()[0]).parse_args()
    r = Report()
    try:
        import cupy
    except Exception as e:  # noqa: BLE001
        r.skip(f"cupy not importable: {first_line(e)}")
    r.info("cupy_version", cupy.__version__)
    rt = cupy.cuda.runtime
    msg = ""
    try:
        ndev = rt.getDeviceCount()
    except Exception as e:  # noqa: BLE001
        ndev, msg = 0, first_line(e)
    if not r.check("cuda_available", ndev > 0, ">0", ndev, msg):
        r.finish()

    Q, chunk = args.quota, args.chunk
    q = Q is not None
    pool = cupy.get_default_memory_pool()
    free0, total0 = rt.memGetInfo()
    r.check_if(q, "memGetInfo_total_eq_quota", total0 == Q, Q, total0)
    r.check_if(q, "memGetInfo_free_le_quota", q and free0 <= Q, f"<={Q}", free0)
    props_total = rt.getDeviceProperties(0)["totalGlobalMem"]
    r.check_if(q, "totalGlobalMem_eq_quota", props_total == Q, Q, props_total)

    a = None
    if q:
        a, outcome, msg = try_alloc(cupy, Q + chunk)
        r.check("over_quota_raises_OutOfMemoryError", outcome == "OutOfMemoryError",
                "OutOfMemoryError", outcome, msg)
        a = None

    cap = Q + 4 * chunk if q else args.max_fill  # the cap only stops a broken shim
    arrays, outcome, msg, max_used, max_pool = [], "ok", "", 0, 0
    while (len(arrays) + 1) * chunk <= cap:
        a, outcome, msg = try_alloc(cupy, chunk)
        if a is None:
            break
        arrays.append(a)
        f, tot = rt.memGetInfo()
        max_used = max(max_used, tot - f)
        max_pool = max(max_pool, pool.total_bytes())
    cupy.cuda.Device().synchronize()
    filled = len(arrays) * chunk
    if q:
        r.check("fill_stops_with_OutOfMemoryError", outcome == "OutOfMemoryError",
                "OutOfMemoryError", outcome, msg)
        r.check("fill_bytes_le_quota", 0 < filled <= Q, f"<={Q}", filled)
        usable_min = max(Q - GIB, 0)
        r.check("fill_bytes_usable", filled >= usable_min, f">={usable_min}", filled,
                "context overhead counts toward the quota")
        r.check("pool_total_bytes_le_quota", max_pool <= Q, f"<={Q}", max_pool)
        r.check("reported_used_le_quota", max_used <= Q, f"<={Q}", max_used,
                "max of memGetInfo total-free while filling")
    else:
        r.check("fill_allocates", filled > 0, ">0", filled)
    hold(args.hold_ms)

    n = len(arrays)
    arrays, a = None, None
    pool.free_all_blocks()
    free1, _ = rt.memGetInfo()
    r.check("free_recovers_after_free_all_blocks", free1 + chunk >= free0, f">={free0 - chunk}", free1)

    again = []
    for _ in range(n):
        a, outcome, msg = try_alloc(cupy, chunk)
        if a is None:
            break
        again.append(a)
    r.check("realloc_after_free", len(again) == n, f"{n}chunks", f"{len(again)}chunks", msg)
    again, a = None, None
    pool.free_all_blocks()
    try:
        value = int(cupy.arange(1000, dtype=cupy.int64).sum())
        ok, msg = value == 499500, f"sum={value}"
    except Exception as e:  # noqa: BLE001
        ok, msg = False, f"{type(e).__name__}: {first_line(e)}"
    r.check("kernel_after_realloc", ok, True, ok, msg)
    r.finish()


if __name__ == "__main__":
    sys.exit(main())
