#!/usr/bin/env python3
"""Medians, ratios and targets for bench/run_bench.sh and bench/run_compute.sh (standard library only).

    aggregate.py --raw RAW                     shim overhead (run_bench.sh), below
    aggregate.py --compute RAW [--out DIR]     compute time-slices (run_compute.sh): see the section
                                               "Compute time-slices" further down

Input: RESULT lines tagged by run_bench.sh, e.g.
    RESULT kind=micro mode=base run=1 rc=0 op=launch ns_median=2410.3 ns_p10=... batches=800 calls=200000
    RESULT kind=micro mode=shim run=1 rc=0 op=launch_inproc hooked_ns=4170.2 real_ns=4150.9 delta_ns=18.1 ...
    RESULT kind=train mode=shim run=2 rc=0 step_ms_median=8.412 ...
Output: one CHECK line per measurement, in the suite's format, with base= shim= ratio= delta= unit=
keys that tests/gpu/report.py turns into the benchmark table.

Across processes (<op>, train_step): the median of each mode's per-process medians; ratio = shim/base.
On this kind of machine the same binary's per-process medians spread by up to 10-30 %, so when the
spread of the no-shim runs is wider than the target's margin the line is INFO ("noise wider than the
target"), not PASS/FAIL.
In one process (<op>_inproc, runs under the shim only): hooked vs real function in interleaved batches;
delta = the median over runs of each run's median per-batch difference. These judge the micro targets.

Targets (issue 2): launch within +2 % or +50 ns; a 1 MiB allocate/free pair within +1000 ns; one
training step within +1 %. cuMemGetInfo has no target (INFO).
"""

import argparse
import json
import os
import re
import statistics
import sys

# measurement -> (unit, target text, allowed margin over base or None)
TARGETS = {
    "launch": ("ns", "<=+2%_or_<=+50ns", lambda b: max(0.02 * b, 50.0)),
    "launch_rt": ("ns", "<=+2%_or_<=+50ns", lambda b: max(0.02 * b, 50.0)),
    "alloc_free": ("ns", "<=+1000ns", lambda b: 1000.0),
    "meminfo": ("ns", "none", None),
    "train_step": ("ms", "<=+1%", lambda b: 0.01 * b),
}


def parse(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_lines(f)


def parse_lines(lines):
    cross, inproc, errors = {}, {}, []
    for line in lines:
        if not line.startswith("RESULT "):
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        mode = fields.get("mode")
        if mode not in ("base", "shim"):
            continue
        if "error" in fields:
            errors.append(f"{mode} run {fields.get('run')}: {fields.get('op', '')} {fields['error']}")
        elif fields.get("op", "").endswith("_inproc"):
            op = fields["op"][: -len("_inproc")]
            inproc.setdefault(op, {"base": [], "shim": []})[mode].append(
                {k: float(fields[k]) for k in ("hooked_ns", "real_ns", "delta_ns")})
        elif "ns_median" in fields:
            cross.setdefault(fields["op"], {"base": [], "shim": []})[mode].append(float(fields["ns_median"]))
        elif "step_ms_median" in fields:
            cross.setdefault("train_step", {"base": [], "shim": []})[mode].append(
                float(fields["step_ms_median"]))
    return cross, inproc, errors


def fmt(value, unit):
    return f"{value:.1f}" if unit == "ns" else f"{value:.3f}"


def line(name, status, target, base, shim, unit, extra, note):
    delta, ratio = shim - base, (shim / base if base else float("inf"))
    return (f"CHECK {name} status={status} expected={target} "
            f"measured={fmt(shim, unit)}{unit}_vs_{fmt(base, unit)}{unit} base={fmt(base, unit)} "
            f"shim={fmt(shim, unit)} ratio={ratio:.4f} delta={fmt(delta, unit)} unit={unit} {extra}"
            f"note={note}")


def judge_cross(key, runs, aa, spec=None, name=None):
    unit, target, margin = spec or TARGETS[key]
    base, shim = statistics.median(runs["base"]), statistics.median(runs["shim"])
    spread = max(runs["base"]) - min(runs["base"])
    allowed = margin(base) if margin else None
    if allowed is None:
        status = "INFO"
    elif len(runs["base"]) > 1 and spread > allowed:
        status = "INFO"
    else:
        status = "PASS" if shim - base <= allowed else "FAIL"
    per_run = (f"per process, base: {', '.join(fmt(v, unit) for v in runs['base'])}; "
               f"shim: {', '.join(fmt(v, unit) for v in runs['shim'])}")
    why = ""
    if allowed is not None and status == "INFO":
        why = (f"not judged: the no-shim runs spread {fmt(spread, unit)} {unit}, wider than the target's "
               f"margin {fmt(allowed, unit)} {unit}; ")
    return status, line(name or key, status, target, base, shim, unit,
                        f"runs={len(runs['base'])}+{len(runs['shim'])} ",
                        f"{aa}across processes; {why}{per_run}")


def judge_inproc(key, runs, aa, spec=None, name=None):
    unit, target, margin = spec or TARGETS[key]
    shim_runs = runs["shim"]
    real = statistics.median(r["real_ns"] for r in shim_runs)
    hooked = statistics.median(r["hooked_ns"] for r in shim_runs)
    delta = statistics.median(r["delta_ns"] for r in shim_runs)
    status = "INFO" if margin is None else ("PASS" if delta <= margin(real) else "FAIL")
    control = ""
    if runs["base"]:
        control = f"; control without the shim: delta {statistics.median(r['delta_ns'] for r in runs['base']):.1f} ns"
    deltas = ", ".join(f"{r['delta_ns']:.1f}" for r in shim_runs)
    note = (f"{aa}in one process, hooked vs real function, interleaved batches; hooked median "
            f"{hooked:.1f} ns; per-run deltas: {deltas}{control}")
    return status, line(f"{name or key}_inproc", status, target, real, real + delta, unit,
                        f"runs={len(shim_runs)} ", note)



# ---------------------------------------------------------------------------------------------------
# Compute time-slices (bench/run_compute.sh): aggregate.py --compute RAW --out DIR
#
# RAW holds the RESULT lines of every process, tagged by run_compute.sh:
#     RESULT scenario=pair_shim name=p30 shim=1 configured=30 cmode=share rc=0 mode=throughput kernels=...
#     RESULT scenario=priority_plain name=infer shim=0 rc=0 mode=infer window=0 ... p99_ms=...
#     RESULT scenario=gate kind=micro mode=base|shim run=N rc=0 op=launch ns_median=...
#     RESULT scenario=calibrate name=calibrate shim=0 rc=0 iters=N kernel_us=T target_us=... error=...
#     RESULT scenario=priority_sweepK name=infer shim=1 priority=high tunables=K1=V1,K2=V2 rc=0 ...
#     RESULT scenario=NAME skipped=REASON        (the time budget, or torch missing)
#     RESULT scenario=NAME elapsed_s=SECONDS     (wall time of a scenario; only shown, never judged)
# Prints one CHECK per criterion (with base= shim= ratio= delta= unit= where a no-shim value exists,
# so that tests/gpu/report.py puts it in summary.md's benchmark table: "without shim" is then plain
# sharing, "with shim" the delivered value, "target" the configured one), and writes DIR/compute.json
# and DIR/compute.md (configured vs delivered per case, next to plain sharing).

GATE_TARGETS = {
    "launch": ("ns", "<=+2%", lambda b: 0.02 * b),
    "launch_rt": ("ns", "<=+2%", lambda b: 0.02 * b),
}


def load_rows(path):
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            if raw.startswith("RESULT "):
                rows.append(dict(re.findall(r"(\w+)=(\S+)", raw)))
    return rows


def win(procs, name, w):
    """The RESULT row of process `name`, window `w` (resnet50.py prints one per window)."""
    return next((r for r in procs if r.get("name") == name and r.get("window") == str(w)), None)


def num(row, key):
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return None


class Compute:
    def __init__(self, rows, a):
        self.rows, self.a = rows, a
        self.aa = os.environ.get("BENCH_AA") == "1"
        self.checks, self.table, self.data = [], [], {}

    # -- rows ------------------------------------------------------------------------------------
    def scenario(self, name):
        """(ran, skip_reason, process rows) for one scenario."""
        rows = [r for r in self.rows if r.get("scenario") == name]
        skip = next((r["skipped"] for r in rows if "skipped" in r and "name" not in r), None)
        procs = [r for r in rows if "name" in r]
        if skip is None and procs and all("skipped" in r for r in procs):
            skip = procs[0]["skipped"]
        return bool(rows), skip, procs

    @staticmethod
    def bad(row):
        """Why a process row cannot be used, or None."""
        if row is None:
            return "no result"
        if "skipped" in row:
            return f"skipped ({row['skipped']})"
        if row.get("error", "cudaSuccess") != "cudaSuccess":
            return f"error {row['error']}"
        if row.get("rc", "0") != "0":
            return f"exit status {row['rc']}"
        return None

    # -- output ----------------------------------------------------------------------------------
    def check(self, name, status, expected, measured, note="", base=None, shim=None, unit=None):
        if self.aa and status in ("PASS", "FAIL"):
            note = f"A/A run, no shim anywhere, verdict {status} not counted; {note}"
            status = "INFO"
        c = {"name": name, "status": status, "expected": expected.replace(" ", "_"),
             "measured": measured.replace(" ", "_"), "note": note}
        if base is not None and shim is not None:
            c.update(base=f"{base:.2f}", shim=f"{shim:.2f}",
                     ratio=f"{shim / base:.4f}" if base else "inf", delta=f"{shim - base:.2f}", unit=unit)
        self.checks.append(c)
        return status

    def row(self, case, who, configured, delivered, plain, target, status):
        self.table.append([case, who, configured, delivered, plain, target, status])

    def missing(self, label, why, names):
        for n in names:
            status = "SKIP" if why.startswith("skipped") else "FAIL"
            self.check(f"{label}_{n}" if n else label, status, "data", "none", why)
        self.row(label, "", "", why, "", "", "SKIP" if why.startswith("skipped") else "FAIL")

    # -- cases -----------------------------------------------------------------------------------
    def calibration(self):
        ran, skip, procs = self.scenario("calibrate")
        if not ran:
            return
        row = procs[0] if procs else None
        why = f"skipped ({skip})" if skip else self.bad(row)
        if why or not num(row, "iters"):
            why = why or "no iteration count"
            st = self.check("compute_calibration", "SKIP" if skip else "FAIL", "iters>0", "none",
                            f"compute_loop --calibrate: {why}; the compute_loop scenarios cannot run")
            self.row("calibration", "compute_loop --calibrate", "-", why, "-", "one kernel ≈ target", st)
            return
        it, us, target = int(num(row, "iters")), num(row, "kernel_us"), num(row, "target_us")
        given = row.get("given")
        self.data["calibration"] = {"iters": it, "kernel_us": us, "target_us": target,
                                    "min_us": num(row, "min_us"), "max_us": num(row, "max_us"),
                                    "fma_per_thread": num(row, "fma_per_thread"), "grid": row.get("grid"),
                                    "block": row.get("block"), "given": given}
        if given:
            note = f"iteration count given by {given}: {it}; kernel time taken as {us:g} us (not measured)"
        else:
            note = (f"compute_loop --calibrate, alone, no shim: {it} iterations ({row.get('fma_per_thread')} "
                    f"dependent FMAs per thread, grid {row.get('grid')}x{row.get('block')}) take {us:g} us "
                    f"per kernel back to back (target {target:g} us; 5 batches of 50: {row.get('min_us')}-"
                    f"{row.get('max_us')} us); every compute_loop process runs this identical kernel")
        self.check("compute_calibration", "INFO", "-", f"iters={it},kernel_us={us:g}", note)
        self.row("calibration", "compute_loop --calibrate", f"{target:g} us per kernel",
                 f"{it} iterations: {us:.1f} us per kernel" + (f" ({given})" if given else ""), "-",
                 "reference", "INFO")

    def solo(self):
        ran, skip, procs = self.scenario("solo")
        self.solo_kps = None
        if not ran:
            return
        row = procs[0] if procs else None
        why = f"skipped ({skip})" if skip else self.bad(row)
        if why or not num(row, "kernels_per_s"):
            self.check("solo_reference", "SKIP" if skip else "FAIL", "kernels_per_s>0", "none",
                       why or "no kernels counted")
            return
        self.solo_kps = num(row, "kernels_per_s")
        self.data["solo"] = {"kernels_per_s": self.solo_kps, "busy_fraction": num(row, "busy_fraction"),
                             "kernel_us": num(row, "kernel_us"), "window_s": num(row, "window_s"),
                             "grid": row.get("grid"), "block": row.get("block")}
        self.check("solo_reference", "INFO", "-", f"{self.solo_kps:.2f}kernels/s",
                   f"compute_loop alone, no shim: busy fraction {row.get('busy_fraction')}, kernel "
                   f"{row.get('kernel_us')} us, grid {row.get('grid')}x{row.get('block')}, window "
                   f"{row.get('window_s')} s; every ratio below is a throughput over this one")
        self.row("solo", "compute_loop", "-", f"{self.solo_kps:.1f} kernels/s "
                 f"(busy {row.get('busy_fraction')})", "-", "reference", "INFO")

    def ratios(self, procs):
        """{name: (kernels_per_s, ratio to solo)} or an error text."""
        out = {}
        for r in procs:
            why = self.bad(r)
            if why:
                return f"{r.get('name')}: {why}"
            k = num(r, "kernels_per_s")
            if k is None:
                return f"{r.get('name')}: no kernels_per_s"
            out[r["name"]] = (k, k / self.solo_kps)
        return out

    def shares(self, label, title, shim_sc, plain_sc, configured):
        ran_s, skip_s, procs_s = self.scenario(shim_sc)
        ran_p, skip_p, procs_p = self.scenario(plain_sc)
        if not ran_s and not ran_p:
            return
        if self.solo_kps is None:
            return self.missing(label, "no solo reference", ["parts"])
        if skip_s:
            return self.missing(label, f"skipped ({skip_s})", ["parts"])
        if not procs_s or any(n not in {r.get("name") for r in procs_s} for n in configured):
            return self.missing(label, "not measured (the scenario was cut short or a process is missing)",
                                ["parts"])
        shim = self.ratios(procs_s)
        if isinstance(shim, str):
            return self.missing(label, shim, ["parts"])
        plain = {} if skip_p else self.ratios(procs_p)
        plain_err = plain if isinstance(plain, str) else (f"skipped ({skip_p})" if skip_p else "")
        if isinstance(plain, str):
            plain = {}
        total_cfg = sum(configured.values())
        sum_s = sum(r for _, r in shim.values())
        sum_p = sum(r for _, r in plain.values()) if plain else None
        tol = self.a.part_tol
        case = {"configured": configured, "shim": {}, "plain": {}, "plain_error": plain_err}
        for n, cfg in configured.items():
            k, r = shim[n]
            part, want = r / sum_s, cfg / total_cfg
            pk, pr = plain.get(n, (None, None))
            ppart = pr / sum_p if pr is not None and sum_p else None
            st = "PASS" if abs(part - want) <= tol else "FAIL"
            note = (f"{title}: ratio to solo {r:.4f} ({k:.1f} kernels/s), part = ratio / sum of ratios "
                    f"({sum_s:.4f}); plain sharing (no shim, same run): "
                    + (f"ratio {pr:.4f}, part {ppart * 100:.2f}%" if ppart is not None else plain_err or "n/a"))
            st = self.check(f"{label}_{n}_part", st, f"{want * 100:g}+-{tol * 100:g}%", f"{part * 100:.2f}%",
                            note, base=ppart * 100 if ppart is not None else None, shim=part * 100, unit="%")
            case["shim"][n] = {"kernels_per_s": k, "ratio": r, "part": part}
            if pr is not None:
                case["plain"][n] = {"kernels_per_s": pk, "ratio": pr, "part": ppart}
            self.row(title, n, f"{cfg}% share", f"{part * 100:.2f}% (ratio {r:.3f})",
                     f"{ppart * 100:.2f}% (ratio {pr:.3f})" if ppart is not None else "n/a",
                     f"part {want * 100:g} ± {tol * 100:g}", st)
        st = self.check(f"{label}_efficiency", "PASS" if sum_s >= self.a.eff_min else "FAIL",
                        f">={self.a.eff_min * 100:g}%", f"{sum_s * 100:.2f}%",
                        f"{title}: sum of the ratios to solo (the GPU's efficiency under sharing); plain "
                        f"sharing: " + (f"{sum_p * 100:.2f}%" if sum_p is not None else plain_err or "n/a"),
                        base=sum_p * 100 if sum_p is not None else None, shim=sum_s * 100, unit="%")
        self.row(title, "sum of ratios", "-", f"{sum_s * 100:.2f}%",
                 f"{sum_p * 100:.2f}%" if sum_p is not None else "n/a", f"≥ {self.a.eff_min * 100:g}%", st)
        if sum_p is None:
            st = self.check(f"{label}_total_vs_plain", "FAIL", ">=plain_sharing", f"{sum_s * 100:.2f}%",
                            f"no plain-sharing measurement: {plain_err or 'missing'}")
        else:
            slack = f"-{self.a.conserve_tol * 100:g}" if self.a.conserve_tol else ""
            st = self.check(f"{label}_total_vs_plain",
                            "PASS" if sum_s >= sum_p - self.a.conserve_tol else "FAIL",
                            f">={sum_p * 100:.2f}%{slack}",
                            f"{sum_s * 100:.2f}%",
                            f"{title}: total throughput under the shim vs the same processes sharing the GPU "
                            f"without it (sums of ratios to solo)",
                            base=sum_p * 100, shim=sum_s * 100, unit="%")
        self.row(title, "total vs plain sharing", "-", f"{sum_s * 100:.2f}%",
                 f"{sum_p * 100:.2f}%" if sum_p is not None else "n/a", "≥ plain sharing", st)
        case.update(sum_shim=sum_s, sum_plain=sum_p)
        self.data[label] = case

    def alone(self, label, title, sc, name, kind, cfg):
        ran, skip, procs = self.scenario(sc)
        if not ran:
            return
        if self.solo_kps is None:
            return self.missing(label, "no solo reference", [""])
        if skip:
            return self.missing(label, f"skipped ({skip})", [""])
        row = next((r for r in procs if r.get("name") == name), None)
        why = self.bad(row) or ("" if num(row, "kernels_per_s") is not None else "no kernels_per_s")
        others = [r for r in procs if r is not row and self.bad(r)]
        if why or others:
            return self.missing(label, why or f"{others[0].get('name')}: {self.bad(others[0])}", [""])
        k = num(row, "kernels_per_s")
        r = k / self.solo_kps
        if kind == "cap":
            ok = abs(r - cfg / 100) <= self.a.cap_tol
            exp = f"{cfg:g}+-{self.a.cap_tol * 100:g}%"
            note = f"{title}: throughput over solo ({k:.1f} / {self.solo_kps:.1f} kernels/s)"
            target = f"{cfg:g} ± {self.a.cap_tol * 100:g}% of solo"
        else:
            ok = r >= self.a.conserve_min
            exp = f">={self.a.conserve_min * 100:g}%"
            note = (f"{title}: throughput over solo ({k:.1f} / {self.solo_kps:.1f} kernels/s); the other "
                    f"process (share 70) initialised CUDA and stayed idle")
            target = f"≥ {self.a.conserve_min * 100:g}% of solo"
        st = self.check(f"{label}", "PASS" if ok else "FAIL", exp, f"{r * 100:.2f}%", note,
                        base=100.0, shim=r * 100, unit="%")
        self.row(title, name, f"{cfg}% {kind}", f"{r * 100:.2f}% of solo", "100% (alone, no shim)", target,
                 st)
        self.data[label] = {"configured": cfg, "mode": kind, "kernels_per_s": k, "ratio": r}

    def priority(self):
        ran_p, skip_p, procs_p = self.scenario("priority_plain")
        ran_s, skip_s, procs_s = self.scenario("priority_shim")
        if not ran_p and not ran_s:
            return
        title = "priority: ResNet-50 inference (high) beside training (low)"
        skip = skip_p or skip_s
        if skip:
            return self.missing("priority", f"skipped ({skip})", ["infer_p99", "train_kept"])
        inf_alone, inf_plain = win(procs_p, "infer", 0), win(procs_p, "infer", 1)
        tr_alone, tr_plain = win(procs_p, "train", 0), win(procs_p, "train", 1)
        inf_shim_alone, inf_shim = win(procs_s, "infer", 0), win(procs_s, "infer", 1)
        tr_shim = win(procs_s, "train", 0)
        for label, r in (("inference alone (no shim)", inf_alone), ("training alone (no shim)", tr_alone),
                         ("inference high beside training low", inf_shim),
                         ("training low beside inference high", tr_shim)):
            why = self.bad(r)
            if why:
                return self.missing("priority", f"{label}: {why}", ["infer_p99", "train_kept"])
        a99 = num(inf_alone, "p99_ms")
        s99 = num(inf_shim, "p99_ms")
        p99 = None if self.bad(inf_plain) else num(inf_plain, "p99_ms")
        sa99 = None if self.bad(inf_shim_alone) else num(inf_shim_alone, "p99_ms")
        limit = a99 * self.a.p99_max
        pct_ = lambda v: f"{(v / a99 - 1) * 100:+.1f}%"  # noqa: E731
        self.check("priority_infer_alone", "INFO", "-", f"p99={a99:.3f}ms",
                   f"batch-1 inference at {inf_alone.get('rate')} req/s alone, no shim: p50 "
                   f"{inf_alone.get('p50_ms')} ms, p99 {a99:.3f} ms, max {inf_alone.get('max_ms')} ms, "
                   f"{inf_alone.get('requests')} requests, {inf_alone.get('late')} late"
                   + (f"; alone under the shim (--priority high, training idle): p99 {sa99:.3f} ms"
                      if sa99 is not None else ""))
        st = self.check("priority_infer_p99", "PASS" if s99 <= limit else "FAIL",
                        f"<={limit:.3f}ms(alone+{(self.a.p99_max - 1) * 100:g}%)",
                        f"{s99:.3f}ms({pct_(s99)})",
                        f"inference --priority high beside training --priority low: p50 {inf_shim.get('p50_ms')} "
                        f"ms, p99 {s99:.3f} ms, {inf_shim.get('late')} late; plain sharing (no shim, same run): "
                        + (f"p99 {p99:.3f} ms ({pct_(p99)})" if p99 is not None else "n/a"),
                        base=p99, shim=s99, unit="ms")
        self.row(title, "inference p50 / p99", "high",
                 f"p50 {num(inf_shim, 'p50_ms') or 0:.2f} ms, p99 {s99:.2f} ms ({pct_(s99)})",
                 f"{p99:.2f} ms ({pct_(p99)})" if p99 is not None else "n/a",
                 f"≤ alone {a99:.2f} ms + {(self.a.p99_max - 1) * 100:g}%", st)
        ta = num(tr_alone, "it_per_s")
        ts = num(tr_shim, "it_per_s")
        tp = None if self.bad(tr_plain) else num(tr_plain, "it_per_s")
        rs = ts / ta if ta else 0.0
        rp = tp / ta if ta and tp is not None else None
        st = self.check("priority_train_kept", "PASS" if rs >= self.a.train_min else "FAIL",
                        f">={self.a.train_min * 100:g}%", f"{rs * 100:.1f}%",
                        f"training --priority low beside high-priority inference: {ts:.3f} it/s, alone "
                        f"{ta:.3f} it/s (batch {tr_alone.get('batch')}); plain sharing: "
                        + (f"{tp:.3f} it/s ({rp * 100:.1f}%)" if rp is not None else "n/a"),
                        base=rp * 100 if rp is not None else None, shim=rs * 100, unit="%")
        self.row(title, "training throughput", "low", f"{rs * 100:.1f}% of solo ({ts:.2f} it/s)",
                 f"{rp * 100:.1f}% ({tp:.2f} it/s)" if rp is not None else "n/a",
                 f"≥ {self.a.train_min * 100:g}% of solo ({ta:.2f} it/s)", st)
        keys = ("p50_ms", "p99_ms", "max_ms", "requests", "late")
        self.data["priority"] = {
            "infer_alone": {k: inf_alone.get(k) for k in keys},
            "infer_plain": {k: (inf_plain or {}).get(k) for k in keys},
            "infer_shim_alone": {k: (inf_shim_alone or {}).get(k) for k in keys},
            "infer_shim": {k: inf_shim.get(k) for k in keys},
            "train_alone_it_per_s": ta, "train_plain_it_per_s": tp, "train_shim_it_per_s": ts,
            "train_kept_shim": rs, "train_kept_plain": rp, "rate": inf_alone.get("rate"),
        }

    def priority_sweep(self):
        """INFO rows: the "both" phase again, once per XPU_SCHED_TUNABLES variant, next to the default."""
        names = sorted({r["scenario"] for r in self.rows if r.get("scenario", "").startswith("priority_sweep")},
                       key=lambda n: int(n[len("priority_sweep"):] or 0))
        if not names:
            return
        _, _, procs_p = self.scenario("priority_plain")
        _, skip_s, procs_s = self.scenario("priority_shim")
        inf_alone, tr_alone = win(procs_p, "infer", 0), win(procs_p, "train", 0)
        inf_plain, tr_plain = win(procs_p, "infer", 1), win(procs_p, "train", 1)
        a99 = None if self.bad(inf_alone) else num(inf_alone, "p99_ms")
        ta = None if self.bad(tr_alone) else num(tr_alone, "it_per_s")
        p99p = None if self.bad(inf_plain) else num(inf_plain, "p99_ms")
        tp = None if self.bad(tr_plain) else num(tr_plain, "it_per_s")
        rp = tp / ta if tp is not None and ta else None
        vs_alone = (lambda v: f" ({(v / a99 - 1) * 100:+.1f}%)" if a99 else "")  # noqa: E731
        elapsed = {r["scenario"]: num(r, "elapsed_s") for r in self.rows if "elapsed_s" in r}

        def entry(tunables, sc, inf, tr, why):
            e = {"tunables": tunables, "scenario": sc, "elapsed_s": elapsed.get(sc)}
            if why:
                e["error"] = why
                return e
            e.update({k: num(inf, k) for k in ("p50_ms", "p99_ms", "max_ms", "late", "requests")})
            e["p99_vs_alone"] = e["p99_ms"] / a99 if a99 and e["p99_ms"] is not None else None
            e["train_it_per_s"] = num(tr, "it_per_s")
            e["train_kept"] = e["train_it_per_s"] / ta if ta and e["train_it_per_s"] is not None else None
            return e

        def why_not(skip, inf, tr):
            if skip:
                return f"skipped ({skip})"
            for label, r in (("inference", inf), ("training", tr)):
                if self.bad(r):
                    return f"{label}: {self.bad(r)}"
            return None

        inf_d, tr_d = win(procs_s, "infer", 1), win(procs_s, "train", 0)
        sweep = [entry("default", "priority_shim", inf_d, tr_d, why_not(skip_s, inf_d, tr_d))]
        for sc in names:
            _, skip, procs = self.scenario(sc)
            tun = next((r["tunables"] for r in self.rows if r.get("scenario") == sc and "tunables" in r), "?")
            inf, tr = win(procs, "infer", 0), win(procs, "train", 0)
            e = entry(tun, sc, inf, tr, why_not(skip, inf, tr))
            sweep.append(e)
            k = sc[len("priority_"):]
            title = f"priority, XPU_SCHED_TUNABLES={tun}"
            took = f"; scenario took {e['elapsed_s']:.1f} s" if e.get("elapsed_s") is not None else ""
            if "error" in e:
                self.check(f"priority_{k}", "INFO", "-", "none",
                           f"XPU_SCHED_TUNABLES={tun}: not measured: {e['error']}{took}")
                self.row(title, "inference + training", "high / low", f"not measured: {e['error']}", "-",
                         "INFO (the default row is judged)", "INFO")
                continue
            self.check(f"priority_{k}_infer_p99", "INFO", "-", f"{e['p99_ms']:.3f}ms{vs_alone(e['p99_ms']).strip()}",
                       f"XPU_SCHED_TUNABLES={tun}: inference --priority high beside training --priority low: "
                       f"p50 {e['p50_ms']:.3f} ms, p99 {e['p99_ms']:.3f} ms, max {e['max_ms']:.3f} ms, "
                       f"{e['late']:.0f} late; alone (no shim) p99 "
                       + (f"{a99:.3f} ms" if a99 else "n/a") + took,
                       base=p99p, shim=e["p99_ms"], unit="ms")
            self.row(title, "inference p50 / p99", "high",
                     f"p50 {e['p50_ms']:.2f} ms, p99 {e['p99_ms']:.2f} ms{vs_alone(e['p99_ms'])}",
                     f"{p99p:.2f} ms{vs_alone(p99p)}" if p99p is not None else "n/a",
                     f"≤ alone {a99:.2f} ms + {(self.a.p99_max - 1) * 100:g}% (INFO)" if a99 else "INFO", "INFO")
            kept = e["train_kept"]
            self.check(f"priority_{k}_train_kept", "INFO", "-",
                       f"{kept * 100:.1f}%" if kept is not None else f"{e['train_it_per_s']:.3f}it/s",
                       f"XPU_SCHED_TUNABLES={tun}: training --priority low beside high-priority inference: "
                       f"{e['train_it_per_s']:.3f} it/s, alone " + (f"{ta:.3f} it/s" if ta else "n/a") + took,
                       base=rp * 100 if rp is not None and kept is not None else None,
                       shim=kept * 100 if kept is not None else None, unit="%")
            self.row(title, "training throughput", "low",
                     (f"{kept * 100:.1f}% of solo ({e['train_it_per_s']:.2f} it/s)" if kept is not None
                      else f"{e['train_it_per_s']:.2f} it/s"),
                     f"{rp * 100:.1f}% ({tp:.2f} it/s)" if rp is not None else "n/a",
                     f"≥ {self.a.train_min * 100:g}% of solo (INFO)", "INFO")
        self.data["priority_sweep"] = {"alone": {"infer_p99_ms": a99, "train_it_per_s": ta},
                                       "plain": {"infer_p99_ms": p99p, "train_it_per_s": tp, "train_kept": rp},
                                       "runs": sweep}

    def gate(self):
        ran, skip, _ = self.scenario("gate")
        if not ran:
            return
        title = "gate uncontended (--compute 100)"
        rows = [r for r in self.rows if r.get("scenario") == "gate"]
        if skip or any("error" in r and "kind" not in r for r in rows):
            why = f"skipped ({skip})" if skip else next(r["error"] for r in rows if "error" in r)
            return self.missing("gate", why, ["launch"])
        lines = [("RESULT " + " ".join(f"{k}={v}" for k, v in r.items() if k != "scenario"))
                 for r in rows if r.get("kind") == "micro"]
        cross, inproc, errors = parse_lines(lines)
        for err in errors:
            self.check("gate_error", "FAIL", "no_error", "error", err)
        aa = "A/A run, both sides without the shim; " if self.aa else ""
        self.data["gate"] = {}
        if not lines:
            return self.missing("gate", "no driver_microbench results", ["launch"])
        for op, spec in GATE_TARGETS.items():
            for table, judge in ((cross, judge_cross), (inproc, judge_inproc)):
                runs = table.get(op)
                if not runs or not runs["shim"] or (judge is judge_cross and not runs["base"]):
                    continue
                status, text = judge(op, runs, aa, spec=spec, name=f"gate_{op}")
                fields = dict(re.findall(r"(\w+)=(\S+)", text.partition(" note=")[0]))
                name = text.split()[1]
                if self.aa and status in ("PASS", "FAIL"):
                    status = "INFO"
                self.checks.append({"name": name, "status": status, "expected": fields["expected"],
                                    "measured": fields["measured"], "note": text.partition(" note=")[2],
                                    **{k: fields[k] for k in ("base", "shim", "ratio", "delta", "unit")}})
                self.row(title, name[len("gate_"):], "gate on, alone", f"{fields['shim']} ns",
                         f"{fields['base']} ns (native)", f"≤ +2% (ratio {fields['ratio']})", status)
                self.data["gate"][name] = {k: fields[k] for k in ("base", "shim", "ratio", "delta")}

    def snapshot(self):
        snap = next((r for r in self.rows if "status_snapshot" in r), None)
        if snap is None:
            return
        path = snap["status_snapshot"]
        summary = f"rc {snap.get('status_rc')}"
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            if "error" in doc:
                summary += f", error: {str(doc['error'])[:200]}"
            else:
                procs = [p for d in doc.get("devices", []) for g in d.get("groups", [])
                         for p in g.get("processes", [])] + doc.get("processes_without_gpu", [])
                keep = ("pid", "comm", "compute_percent", "compute_mode", "priority")
                shown = ["{" + ", ".join(f"{k}={p.get(k)}" for k in keep if k in p)
                         + "".join(f", {k}={v}" for k, v in p.items() if "deliver" in k) + "}" for p in procs]
                summary += f", {len(procs)} processes: " + "; ".join(shown)
        except (OSError, ValueError) as e:
            summary += f", unreadable: {e}"
        self.data["status_snapshot"] = {"file": os.path.basename(path), "summary": summary}
        self.check("pair_status_snapshot", "INFO", "-", f"rc={snap.get('status_rc')}",
                   f"xpu-run status --json while the 30/70 pair ran ({os.path.basename(path)}): {summary}")

    # -- all -------------------------------------------------------------------------------------
    def run(self):
        self.calibration()
        self.solo()
        self.gate()
        self.shares("pair_30_70", "30/70 share", "pair_shim", "pair_plain", {"p30": 30, "p70": 70})
        self.shares("quad_10_20_30_40", "10/20/30/40 share", "quad_shim", "quad_plain",
                    {"q10": 10, "q20": 20, "q30": 30, "q40": 40})
        self.alone("cap30_alone", "cap 30 alone", "cap", "cap30", "cap", 30)
        self.alone("share30_other_idle", "share 30, other process idle (work conservation)", "conserve",
                   "s30", "share", 30)
        self.priority()
        self.priority_sweep()
        self.snapshot()
        if not self.checks:
            self.check("compute_results", "FAIL", "RESULT_lines", "none", "no scenario produced results")

    def markdown(self):
        out = ["# Compute time-slices: configured vs delivered", ""]
        if self.aa:
            out += ["**A/A run: no shim anywhere; the 'with shim' column ran bare.**", ""]
        out += ["Delivered = a process's throughput over its solo throughput (compute_loop: kernels/s in "
                "one shared wall window, every kernel a fixed amount of work calibrated to ~1 ms alone; "
                "ResNet-50: it/s, p99 latency). Part = ratio / sum of the ratios. "
                "Plain sharing = the same processes on the same GPU without the shim, in the same run.", "",
                "| case | process | configured | delivered (shim) | plain sharing (no shim) | target | result |",
                "|---|---|---|---|---|---|---|"]
        for r in self.table:
            out.append("| " + " | ".join(cell(x) for x in r) + " |")
        sweep = self.data.get("priority_sweep")
        if sweep:
            out += ["", "Priority sweep (INFO; the default row above is the judged one): ResNet-50 inference "
                    "--priority high beside training --priority low, one run per `XPU_SCHED_TUNABLES` value, "
                    "the same phase length; percentages against the phases alone without the shim.", "",
                    "| XPU_SCHED_TUNABLES | inference p50 | inference p99 | late | training it/s | "
                    "training % of solo | scenario wall time |", "|---|---|---|---|---|---|---|"]
            alone, plain = sweep["alone"], sweep["plain"]

            def ms(v, ref=None):
                if v is None:
                    return "n/a"
                return f"{v:.2f} ms" + (f" ({(v / ref - 1) * 100:+.1f}%)" if ref else "")

            out.append(f"| alone, no shim (reference) | - | {ms(alone['infer_p99_ms'])} | - | "
                       + (f"{alone['train_it_per_s']:.2f}" if alone["train_it_per_s"] else "n/a") + " | 100% | - |")
            out.append(f"| plain sharing, no shim | - | {ms(plain['infer_p99_ms'], alone['infer_p99_ms'])} | - | "
                       + (f"{plain['train_it_per_s']:.2f}" if plain["train_it_per_s"] is not None else "n/a")
                       + " | " + (f"{plain['train_kept'] * 100:.1f}%" if plain["train_kept"] is not None else "n/a")
                       + " | - |")
            for e in sweep["runs"]:
                took = f"{e['elapsed_s']:.1f} s" if e.get("elapsed_s") is not None else "-"
                if "error" in e:
                    out.append(f"| {cell(e['tunables'])} | not measured: {cell(e['error'])} | | | | | {took} |")
                    continue
                kept = f"{e['train_kept'] * 100:.1f}%" if e["train_kept"] is not None else "n/a"
                late = f"{e['late']:.0f}" if e["late"] is not None else "n/a"
                out.append(f"| {cell(e['tunables'])} | {ms(e['p50_ms'])} | {ms(e['p99_ms'], alone['infer_p99_ms'])} "
                           f"| {late} | {e['train_it_per_s']:.2f} | {kept} | {took} |")
        if "status_snapshot" in self.data:
            snap = cell(self.data["status_snapshot"]["summary"])
            out += ["", f"`xpu-run status --json` during 30/70: {snap}"]
        out.append("")
        return "\n".join(out)


def compute_main(a):
    rows = load_rows(a.compute)
    c = Compute(rows, a)
    c.run()
    failed = False
    for ch in c.checks:
        extra = "".join(f" {k}={ch[k]}" for k in ("base", "shim", "ratio", "delta", "unit") if k in ch)
        print(f"CHECK {ch['name']} status={ch['status']} expected={ch['expected']} measured={ch['measured']}"
              f"{extra} note={ch['note']}")
        failed |= ch["status"] == "FAIL"
    md = c.markdown()
    print(md)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "compute.md"), "w", encoding="utf-8") as f:
            f.write(md)
        thresholds = {k: getattr(a, k) for k in ("part_tol", "eff_min", "conserve_tol", "cap_tol",
                                                  "conserve_min", "p99_max", "train_min")}
        with open(os.path.join(a.out, "compute.json"), "w", encoding="utf-8") as f:
            json.dump({"aa": c.aa, "thresholds": thresholds, "results": c.data, "checks": c.checks,
                       "table": [dict(zip(("case", "process", "configured", "delivered_shim", "plain_sharing",
                                           "target", "result"), r)) for r in c.table],
                       "raw": rows}, f, indent=1)
            f.write("\n")
    return 1 if failed else 0


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", help="run_bench.sh's tagged RESULT lines")
    ap.add_argument("--compute", help="run_compute.sh's tagged RESULT lines (compute time-slices)")
    ap.add_argument("--out", help="with --compute: write compute.json and compute.md here")
    ap.add_argument("--part-tol", type=float, default=0.01, help="|part - configured part| (0.01 = 1 point)")
    ap.add_argument("--eff-min", type=float, default=0.97, help="sum of ratios to solo under sharing")
    ap.add_argument("--conserve-tol", type=float, default=0.0,
                    help="total under the shim may be this far below plain sharing's")
    ap.add_argument("--cap-tol", type=float, default=0.01, help="cap alone: |ratio - cap|")
    ap.add_argument("--conserve-min", type=float, default=0.97, help="share alone, other idle: ratio")
    ap.add_argument("--p99-max", type=float, default=1.05, help="inference p99 / alone p99")
    ap.add_argument("--train-min", type=float, default=0.25, help="training kept, ratio to solo")
    a = ap.parse_args()
    if a.compute:
        return compute_main(a)
    if not a.raw:
        ap.error("--raw or --compute is required")
    cross, inproc, errors = parse(a.raw)
    aa = "A/A run, both sides without the shim; " if os.environ.get("BENCH_AA") == "1" else ""
    failed = False
    for err in errors:
        print(f"CHECK bench_error status=FAIL expected=no_error measured=error note={err}")
        failed = True
    for key in TARGETS:
        for table, judge in ((cross, judge_cross), (inproc, judge_inproc)):
            if key not in table:
                continue
            runs = table[key]
            needed = ("base", "shim") if judge is judge_cross else ("shim",)
            if any(not runs[m] for m in needed):
                print(f"CHECK {key} status=FAIL expected={TARGETS[key][1]} measured=no_data "
                      f"note=base runs {len(runs['base'])}, shim runs {len(runs['shim'])}")
                failed = True
                continue
            status, text = judge(key, runs, aa)
            failed |= status == "FAIL"
            print(text)
    if not cross and not inproc and not errors:
        print("CHECK bench_results status=FAIL expected=RESULT_lines measured=none")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
