#!/usr/bin/env python3
"""Judge what nvidia-smi saw from outside during one case: real usage must stay within the quota.

run_all.sh samples, without LD_PRELOAD, for the length of a case:
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 100  > apps.csv
    nvidia-smi --query-gpu=memory.used               --format=csv,noheader,nounits -lms 100  > gpu.csv
and then calls
    observer.py --apps apps.csv --gpu gpu.csv --baseline-mib N --quota BYTES --log case.log
The test programs print `INFO pid=<pid>`; those pids are looked up in apps.csv.

Methods (the CHECK line says which one was used):
  pid      one pid matched: the max used_memory of that pid.
  pid-sum  several pids matched (the group case): rows are regrouped into nvidia-smi's loop
           iterations (a new iteration starts when a pid repeats) and our pids are summed per
           iteration; the max of those sums.
  card     no pid matched (e.g. the test runs in another PID namespace, or per-process memory is
           [N/A]): max memory.used of the card minus the baseline taken just before the case.
nvidia-smi reports MiB; PASS if max_MiB * 2^20 <= quota.
"""

import argparse
import re
import sys

MIB = 1 << 20


def read_apps(path):
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*", line)
                if m:
                    rows.append((int(m.group(1)), int(m.group(2))))
    except OSError:
        pass
    return rows


def read_gpu(path):
    values = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if re.fullmatch(r"\s*\d+\s*", line):
                    values.append(int(line))
    except OSError:
        pass
    return values


def read_pids(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sorted({int(m.group(1)) for m in re.finditer(r"^INFO pid=(\d+)", f.read(), re.M)})
    except OSError:
        return []


def iterations(rows):
    """Split the -lms stream into loop iterations: a repeated pid starts a new one."""
    current, seen = [], set()
    for pid, used in rows:
        if pid in seen:
            yield current
            current, seen = [], set()
        current.append((pid, used))
        seen.add(pid)
    if current:
        yield current


def judge(rows, gpu, baseline, pids):
    """Returns (method, max_mib, samples, detail) or (None, ...) when nothing was observed."""
    ours = [(p, u) for p, u in rows if p in pids]
    per_pid = {}
    for p, u in ours:
        per_pid[p] = max(per_pid.get(p, 0), u)
    detail = ",".join(f"{p}:{u}MiB" for p, u in sorted(per_pid.items()))
    if len(per_pid) == 1:
        return "pid", max(per_pid.values()), len(ours), detail
    if len(per_pid) > 1:
        sums = [sum(u for p, u in it if p in pids) for it in iterations(rows)]
        return "pid-sum", max(sums), len(sums), detail
    if gpu:
        return "card", max(gpu) - baseline, len(gpu), f"card_max={max(gpu)}MiB baseline={baseline}MiB"
    return None, 0, 0, "no nvidia-smi samples"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", required=True)
    ap.add_argument("--gpu", required=True)
    ap.add_argument("--baseline-mib", type=int, default=0)
    ap.add_argument("--quota", type=int, required=True, help="bytes")
    ap.add_argument("--log", required=True, help="case output with INFO pid= lines")
    a = ap.parse_args()

    pids = set(read_pids(a.log))
    gpu = read_gpu(a.gpu)
    method, max_mib, samples, detail = judge(read_apps(a.apps), gpu, a.baseline_mib, pids)
    quota_mib = a.quota // MIB
    if method is None:
        print(f"CHECK nvidia_smi_real_usage_le_quota status=FAIL expected=<={quota_mib}MiB "
              f"measured=no_samples note={detail}")
        return 0
    ok = max_mib * MIB <= a.quota
    print(f"CHECK nvidia_smi_real_usage_le_quota status={'PASS' if ok else 'FAIL'} "
          f"expected=<={quota_mib}MiB measured={max_mib}MiB method={method} samples={samples} "
          f"note=method {method}; {detail}")
    if method != "card" and gpu:
        print(f"CHECK nvidia_smi_card_used_minus_baseline status=INFO expected=- "
              f"measured={max(gpu) - a.baseline_mib}MiB note=cross-check, whole card")
    return 0


if __name__ == "__main__":
    sys.exit(main())
