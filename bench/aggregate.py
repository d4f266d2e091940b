#!/usr/bin/env python3
"""Medians, ratios and targets for bench/run_bench.sh (standard library only).

Input: RESULT lines tagged by run_bench.sh, e.g.
    RESULT kind=micro mode=base run=1 rc=0 op=launch ns_median=2410.3 ns_p10=... batches=800 calls=200000
    RESULT kind=train mode=shim run=2 rc=0 step_ms_median=8.412 ...
For each measurement: the per-process medians of each mode, then the median of those over runs;
ratio = shim / base, delta = shim - base. Output: one CHECK line per measurement (the suite's format),
with base= shim= ratio= delta= unit= keys that tests/gpu/report.py turns into the benchmark table.

Targets (issue 2): launch (either path) within +2 % or +50 ns; a 1 MiB allocate/free pair within
+1000 ns; one training step within +1 %. cuMemGetInfo has no target (INFO).
"""

import argparse
import os
import re
import statistics
import sys

# measurement -> (unit, target text, predicate(base, shim))
TARGETS = {
    "launch": ("ns", "<=+2%_or_<=+50ns", lambda b, s: s <= b * 1.02 or s - b <= 50),
    "launch_rt": ("ns", "<=+2%_or_<=+50ns", lambda b, s: s <= b * 1.02 or s - b <= 50),
    "alloc_free": ("ns", "<=+1000ns", lambda b, s: s - b <= 1000),
    "meminfo": ("ns", "none", None),
    "train_step": ("ms", "<=+1%", lambda b, s: s <= b * 1.01),
}


def parse(path):
    """-> {measurement: {'base': [per-run values], 'shim': [...]}}, errors: [text]."""
    data, errors = {}, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            if not line.startswith("RESULT ") or "mode" not in fields:
                continue
            if "error" in fields:
                errors.append(f"{fields.get('mode')} run {fields.get('run')}: {fields.get('op', '')} {fields['error']}")
                continue
            if fields.get("kind") == "micro" and "ns_median" in fields:
                key, value = fields["op"], float(fields["ns_median"])
            elif fields.get("kind") == "train" and "step_ms_median" in fields:
                key, value = "train_step", float(fields["step_ms_median"])
            else:
                continue
            data.setdefault(key, {"base": [], "shim": []})[fields["mode"]].append(value)
    return data, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True)
    a = ap.parse_args()
    data, errors = parse(a.raw)
    aa = "A/A run, both sides without the shim; " if os.environ.get("BENCH_AA") == "1" else ""
    failed = False
    for err in errors:
        print(f"CHECK bench_error status=FAIL expected=no_error measured=error note={err}")
        failed = True
    for key in TARGETS:
        if key not in data:
            continue
        unit, target, ok = TARGETS[key]
        runs = data[key]
        if not runs["base"] or not runs["shim"]:
            print(f"CHECK {key} status=FAIL expected={target} measured=no_data "
                  f"note=base runs {len(runs['base'])}, shim runs {len(runs['shim'])}")
            failed = True
            continue
        base, shim = statistics.median(runs["base"]), statistics.median(runs["shim"])
        ratio, delta = shim / base if base else float("inf"), shim - base
        status = "INFO" if ok is None else ("PASS" if ok(base, shim) else "FAIL")
        failed |= status == "FAIL"
        fmt = "{:.1f}" if unit == "ns" else "{:.3f}"
        print(f"CHECK {key} status={status} expected={target} "
              f"measured={fmt.format(shim)}{unit}_vs_{fmt.format(base)}{unit} "
              f"base={fmt.format(base)} shim={fmt.format(shim)} ratio={ratio:.4f} "
              f"delta={fmt.format(delta)} unit={unit} runs={len(runs['base'])}+{len(runs['shim'])} "
              f"note={aa}per run, base: {', '.join(fmt.format(v) for v in runs['base'])}; "
              f"shim: {', '.join(fmt.format(v) for v in runs['shim'])}")
    if not data and not errors:
        print("CHECK bench_results status=FAIL expected=RESULT_lines measured=none")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
