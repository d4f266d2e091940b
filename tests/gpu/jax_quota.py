#!/usr/bin/env python3
"""JAX under a memory quota (issue 2 acceptance), with its default preallocation ON.

    XLA_PYTHON_CLIENT_PREALLOCATE=true xpu-run --mem 4GiB -- python3 jax_quota.py --quota 4GiB
    python3 jax_quota.py --quota none              # baseline, no shim

XLA sizes its BFC pool as a fraction (0.75 by default) of the *total* that cuMemGetInfo reports and
grabs it at start-up; with the physical total a quota'd process would ask for 60 GB and fail. With
Q = --quota: the first operation works (the preallocation fit), memory_stats()['bytes_limit'] <= Q, an
array larger than the pool raises XlaRuntimeError/JaxRuntimeError RESOURCE_EXHAUSTED, chunks until
that error stay within the pool, and after deleting them the same chunks fit again.
"""

import gc
import importlib.metadata
import os
import sys

from pyreport import Report, arg_parser, first_line, hold


def has_cuda_plugin():
    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in importlib.metadata.distributions()}
    return any(n.startswith("jax-cuda") for n in names)


def try_full(jnp, nbytes):
    """Returns (array or None, outcome, message); outcome is ok, RESOURCE_EXHAUSTED or the error class."""
    try:
        a = jnp.full((nbytes,), 7, dtype=jnp.uint8)
        a.block_until_ready()
        return a, "ok", ""
    except Exception as e:  # noqa: BLE001 - the class differs across jaxlib versions
        kind = type(e).__name__
        if kind in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in str(e):
            return None, "RESOURCE_EXHAUSTED", f"{kind}: {first_line(e)}"
        return None, kind, first_line(e)


def main():
    args = arg_parser(__doc__.splitlines()[0]).parse_args()
    r = Report()
    try:
        if not has_cuda_plugin():
            r.skip("no jax-cuda plugin installed")
        # Fail loudly instead of silently falling back to the CPU when the CUDA backend cannot start
        # (for instance because its preallocation did not fit).
        os.environ.setdefault("JAX_PLATFORMS", "cuda")
        import jax
        import jax.numpy as jnp
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        r.skip(f"jax not importable: {first_line(e)}")
    r.info("jax_version", jax.__version__)
    r.info("preallocate_env", os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "unset(default=true)"))

    Q, chunk = args.quota, args.chunk
    q = Q is not None
    try:
        dev = jax.devices()[0]
        x = jnp.ones((1024,), jnp.float32)
        first = float(x.sum())
        ok, msg = first == 1024.0, f"backend={jax.default_backend()} device={dev.device_kind}"
    except Exception as e:  # noqa: BLE001
        ok, msg = False, f"{type(e).__name__}: {first_line(e)}"
    r.check("backend_starts_and_runs", ok, True, ok, msg)
    if not ok:
        r.finish()

    stats = dev.memory_stats() or {}
    limit = int(stats.get("bytes_limit", 0))
    r.check_if(q, "bytes_limit_le_quota", q and 0 < limit <= Q, f"<={Q}", limit,
               "JAX preallocates a fraction of the reported total")
    if q:
        r.info("bytes_limit_fraction_of_quota", f"{limit / Q:.3f}", "0.75 expected by default")

    too_big = (limit or args.max_fill) + chunk
    a, outcome, msg = try_full(jnp, too_big)
    r.check("too_large_raises_RESOURCE_EXHAUSTED", outcome == "RESOURCE_EXHAUSTED",
            "RESOURCE_EXHAUSTED", outcome, msg)
    a, outcome, msg = try_full(jnp, chunk)
    r.check("small_after_oom", outcome == "ok", "ok", outcome, msg)
    a = None

    cap = Q + 4 * chunk if q else args.max_fill  # the cap only stops a broken setup
    arrays, outcome, msg = [], "ok", ""
    while (len(arrays) + 1) * chunk <= cap:
        a, outcome, msg = try_full(jnp, chunk)
        if a is None:
            break
        arrays.append(a)
    filled = len(arrays) * chunk
    stats = dev.memory_stats() or {}
    peak = int(stats.get("peak_bytes_in_use", 0))
    r.check("fill_stops_with_RESOURCE_EXHAUSTED", outcome == "RESOURCE_EXHAUSTED" or not q,
            "RESOURCE_EXHAUSTED", outcome, msg)
    r.check("fill_bytes_within_pool", 0 < filled <= max(limit, 1), f"<={limit}", filled)
    r.check_if(q, "peak_bytes_in_use_le_quota", q and peak <= Q, f"<={Q}", peak)
    hold(args.hold_ms)

    n = len(arrays)
    arrays, a = None, None
    gc.collect()
    again = []
    for _ in range(n):
        a, outcome, msg = try_full(jnp, chunk)
        if a is None:
            break
        again.append(a)
    r.check("realloc_after_free", len(again) == n, f"{n}chunks", f"{len(again)}chunks", msg)
    again, a = None, None
    gc.collect()
    try:
        value = int((jnp.arange(1000, dtype=jnp.int32) ** 2).sum())
        ok, msg = value == 332833500, f"sum={value}"
    except Exception as e:  # noqa: BLE001
        ok, msg = False, f"{type(e).__name__}: {first_line(e)}"
    r.check("compute_after_realloc", ok, True, ok, msg)
    r.finish()


if __name__ == "__main__":
    sys.exit(main())
