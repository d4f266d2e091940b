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


def parse_lines(lines, shim_mode="shim"):
    """Splits driver_microbench RESULT lines by mode: "base", and `shim_mode` (filed as "shim")."""
    cross, inproc, errors = {}, {}, []
    for line in lines:
        if not line.startswith("RESULT "):
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        mode = fields.get("mode")
        if mode == shim_mode:
            mode = "shim"
        elif mode != "base":
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
#     RESULT scenario=gate_high kind=micro mode=high run=N rc=0 op=launch_inproc hooked_ns=...
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


def median(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def spread(values):
    """max - min of the values there are (None with fewer than two)."""
    v = [x for x in values if x is not None]
    return max(v) - min(v) if len(v) > 1 else None


def ratio(a, b):
    return a / b if a is not None and b else None


def p99_of(d):
    return d.get("p99_ms") if d else None


def p50_of(d):
    return d.get("p50_ms") if d else None


def rounds_n(values):
    n = sum(x is not None for x in values)
    return f"{n} round" + ("" if n == 1 else "s")


def fmt_ms(v):
    return "n/a" if v is None else f"{v:.3f} ms"


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

    # -- priority (ResNet-50), interleaved rounds -------------------------------------------------
    # run_compute.sh's rows: per window "RESULT scenario=priority name=N shim=.. round=R phase=P mode=..
    # tag=R.P ..."; the plan ("plan=1 rounds= phase_s= ..."), each round's order ("round=R order=..")
    # or skip ("round=R skipped=time_budget") and wall time ("round=R round_elapsed_s="); sweep
    # variants ("sweep=K tunables=V [skipped=..]"); per process "exit_rc="; "startup_s=".
    PRIO_MAIN = ("infer_noshim", "train_noshim", "infer_high", "train_low")

    def priority(self):
        rows = [r for r in self.rows if r.get("scenario") == "priority"]
        legacy = sorted({r["scenario"] for r in self.rows
                         if r.get("scenario", "").startswith(("priority_plain", "priority_shim", "priority_sweep"))})
        if legacy:
            self.check("priority_legacy_layout", "INFO", "-", "not_aggregated",
                       f"RESULT lines of the earlier single-phase priority layout ({', '.join(legacy)}): not "
                       "aggregated by this version (their compute.md / compute.json were written when they ran)")
        if not rows:
            return
        names = ["infer_p99", "train_kept"]
        top = [r for r in rows if not any(k in r for k in ("name", "round", "sweep"))]
        skip = next((r["skipped"] for r in top if "skipped" in r), None)
        if skip:
            return self.missing("priority", f"skipped ({skip})", names)
        procs = [r for r in rows if "name" in r]
        proc_skips = {r["name"]: r["skipped"] for r in procs if "skipped" in r and "phase" not in r}
        if proc_skips and all(n in proc_skips for n in self.PRIO_MAIN):
            return self.missing("priority", f"skipped ({proc_skips['infer_high']})", names)
        plan = next((r for r in top if "plan" in r), {})
        info = next((r for r in top if "startup_s" in r), {})
        idx = {(r["round"], r["phase"], r["name"]): r for r in procs if "phase" in r and "round" in r}
        order = {r["round"]: r["order"].split(",") for r in rows if "order" in r and "name" not in r}
        skipped = {r["round"]: r["skipped"] for r in rows
                   if "round" in r and "skipped" in r and "name" not in r}
        elapsed = {r["round"]: num(r, "round_elapsed_s") for r in rows if "round_elapsed_s" in r}
        rounds = sorted(set(order) | set(skipped) | {k[0] for k in idx}, key=lambda x: int(x))
        sweeps = {}
        for r in rows:
            if "sweep" in r and "name" not in r:
                sweeps.setdefault(r["sweep"], {"k": int(r["sweep"]), "tunables": r.get("tunables", "?")})
                if "skipped" in r:
                    sweeps[r["sweep"]]["skipped"] = r["skipped"]
        problems = []  # why a window is missing, for the notes

        def get(rnd, phase, name, key):
            row = idx.get((rnd, phase, name))
            why = self.bad(row)
            if why:
                if rnd not in skipped:
                    problems.append(f"round {rnd} {phase} {name}: {why}")
                return None
            return num(row, key)

        infer_keys = ("p50_ms", "p99_ms", "max_ms", "late", "requests")

        def infer(rnd, phase, name):
            if get(rnd, phase, name, "p99_ms") is None:
                return None
            return {k: num(idx[(rnd, phase, name)], k) for k in infer_keys}

        per_round = []
        for rnd in rounds:
            e = {"round": int(rnd), "order": order.get(rnd, []), "elapsed_s": elapsed.get(rnd)}
            if rnd in skipped:
                e["skipped"] = skipped[rnd]
                per_round.append(e)
                continue
            e.update({"alone": infer(rnd, "alone", "infer_noshim"),
                      "shim_idle": infer(rnd, "shim_idle", "infer_high"),
                      "shim_both": infer(rnd, "shim_both", "infer_high"),
                      "plain": infer(rnd, "plain", "infer_noshim"),
                      "train_alone_it_per_s": get(rnd, "train_alone", "train_noshim", "it_per_s"),
                      "train_shim_it_per_s": get(rnd, "shim_both", "train_low", "it_per_s"),
                      "train_plain_it_per_s": get(rnd, "plain", "train_noshim", "it_per_s")})
            a99, c99 = p99_of(e["alone"]), p99_of(e["shim_both"])
            ta = e["train_alone_it_per_s"]
            e["p99_c_over_a"] = c99 / a99 if a99 and c99 is not None else None
            e["train_kept"] = ratio(e["train_shim_it_per_s"], ta)
            e["train_kept_plain"] = ratio(e["train_plain_it_per_s"], ta)
            e["sweep"] = {}
            for key, sw in sorted(sweeps.items(), key=lambda kv: kv[1]["k"]):
                if "skipped" in sw:
                    continue
                ph = f"sweep{key}"
                inf = infer(rnd, ph, f"infer_high_{ph}")
                tr = get(rnd, ph, f"train_low_{ph}", "it_per_s")
                e["sweep"][key] = {"infer": inf, "train_it_per_s": tr, "train_kept": ratio(tr, ta)}
            per_round.append(e)
        measured = [e for e in per_round if "skipped" not in e]

        def series(f):
            return [f(e) for e in measured]

        s = {
            "alone_p99": series(lambda e: p99_of(e["alone"])),
            "alone_p50": series(lambda e: p50_of(e["alone"])),
            "shim_idle_p99": series(lambda e: p99_of(e["shim_idle"])),
            "shim_both_p99": series(lambda e: p99_of(e["shim_both"])),
            "shim_both_p50": series(lambda e: p50_of(e["shim_both"])),
            "plain_p99": series(lambda e: p99_of(e["plain"])),
            "train_alone": series(lambda e: e["train_alone_it_per_s"]),
            "train_shim": series(lambda e: e["train_shim_it_per_s"]),
            "train_plain": series(lambda e: e["train_plain_it_per_s"]),
            "p99_c_over_a": series(lambda e: e["p99_c_over_a"]),
        }
        m = {k: median(v) for k, v in s.items()}
        sp = {k: spread(v) for k, v in s.items()}
        a99, b99, c99, d99 = m["alone_p99"], m["shim_idle_p99"], m["shim_both_p99"], m["plain_p99"]
        ta, tc, td = m["train_alone"], m["train_shim"], m["train_plain"]
        kept, kept_plain = ratio(tc, ta), ratio(td, ta)
        exits = {r["name"]: r["exit_rc"] for r in procs if "exit_rc" in r}
        bad_exit = {n: rc for n, rc in exits.items() if rc != "0"}
        errors = [f"{r['name']}: {self.bad(r)}" for r in procs
                  if "phase" not in r and "exit_rc" not in r and self.bad(r)]
        n_req = plan.get("rounds", str(len(rounds)))
        vals = lambda xs, f="{:.2f}": ", ".join("-" if x is None else f.format(x) for x in xs)  # noqa: E731
        pct = lambda v: f"{(v / a99 - 1) * 100:+.1f}%" if a99 and v is not None else "n/a"  # noqa: E731
        title = "priority: ResNet-50 inference (high) beside training (low)"
        self.data["priority"] = {
            "rounds_requested": int(n_req) if str(n_req).isdigit() else None,
            "rounds_measured": len(measured), "phase_s": num(plan, "phase_s"), "settle_s": num(plan, "settle_s"),
            "rate": num(plan, "rate"), "phases": plan.get("phases", "").split(",") if plan else [],
            "startup_s": num(info, "startup_s"), "rounds": per_round,
            "median": {**m, "train_kept": kept, "train_kept_plain": kept_plain},
            "spread": sp, "exit_rc": exits, "problems": problems + errors,
        }
        why_none = "; ".join((problems + errors)[:3]) or "no measured round"
        main_keys = (lambda e: [p99_of(e["alone"]), p99_of(e["shim_idle"]), p99_of(e["shim_both"]),  # noqa: E731
                                p99_of(e["plain"]), e["train_alone_it_per_s"], e["train_shim_it_per_s"],
                                e["train_plain_it_per_s"]])
        complete = [e for e in measured if all(x is not None for x in main_keys(e))]
        partial = [e for e in measured if e not in complete and any(x is not None for x in main_keys(e))]
        self.data["priority"]["rounds_complete"] = len(complete)
        rounds_note = (f"{len(complete)} of {n_req} rounds complete"
                       + (f", {len(partial)} partial" if partial else "")
                       + (f", {len(measured) - len(complete) - len(partial)} without data"
                          if len(measured) > len(complete) + len(partial) else "")
                       + (f", {len(per_round) - len(measured)} skipped (time budget)"
                          if len(per_round) > len(measured) else "")
                       + "; round wall times " + vals([e.get("elapsed_s") for e in per_round], "{:.1f}")
                       + " s" + (f"; processes ready after {info['startup_s']} s" if "startup_s" in info else "")
                       + (f"; missing: {'; '.join((problems + errors)[:6])}" if problems or errors else ""))
        self.check("priority_rounds", "INFO", "-", f"{len(complete)}_of_{n_req}_complete", rounds_note
                   + (f"; phases of {plan.get('phase_s')} s (first {plan.get('settle_s')} s not measured), "
                      f"orders: " + "; ".join(f"round {e['round']}: {' '.join(e['order'])}" for e in per_round)
                      if plan else ""))
        if bad_exit:
            main_bad = {n: rc for n, rc in bad_exit.items() if n in self.PRIO_MAIN}
            self.check("priority_exit", "FAIL" if main_bad else "INFO", "exit_0",
                       ",".join(f"{n}:{rc}" for n, rc in bad_exit.items()),
                       "priority processes that did not exit 0 (their finished windows are still used): "
                       + ", ".join(f"{n} exit {rc}" for n, rc in bad_exit.items()))
        if a99 is not None:
            rel = f" ({sp['alone_p99'] / a99 * 100:.1f}% of the median)" if sp["alone_p99"] is not None else ""
            self.check("priority_infer_alone", "INFO", "-", f"p99={a99:.3f}ms",
                       f"(a) batch-1 inference at {plan.get('rate', '?')} req/s alone, no shim: median over "
                       f"{rounds_n(s['alone_p99'])} p99 {a99:.3f} ms, p50 "
                       f"{fmt_ms(m['alone_p50'])}; per round p99 {vals(s['alone_p99'], '{:.3f}')} ms, spread "
                       f"(max-min) {fmt_ms(sp['alone_p99'])}{rel}")
            self.row(title, "(a) inference alone, no shim: p99 per round", "-",
                     f"{vals(s['alone_p99'])} ms (median {a99:.2f} ms, spread {fmt_ms(sp['alone_p99'])})",
                     "-", "reference", "INFO")
        if b99 is not None and a99 is not None:
            self.check("priority_shim_idle", "INFO", "-", f"{b99:.3f}ms({pct(b99)})",
                       f"(b) inference --priority high under the shim, training --priority low joined but idle, "
                       f"vs (a) alone without the shim (the shim's own cost on the high process): median p99 "
                       f"{b99:.3f} vs {a99:.3f} ms; per round (b) {vals(s['shim_idle_p99'], '{:.3f}')} ms, "
                       f"(a) {vals(s['alone_p99'], '{:.3f}')} ms", base=a99, shim=b99, unit="ms")
            self.row(title, "(b) inference, training joined but idle: p99", "high",
                     f"median {b99:.2f} ms ({pct(b99)}); rounds {vals(s['shim_idle_p99'])}",
                     f"{a99:.2f} ms (alone)", "INFO: the shim's own cost", "INFO")
        # (c) vs (a): the judged p99
        n_a = sum(x is not None for x in s["alone_p99"])
        n_c = sum(x is not None for x in s["shim_both_p99"])
        if a99 is None or c99 is None:
            self.check("priority_infer_p99", "FAIL", "data", "none",
                       f"not measured ({'(a) alone' if a99 is None else '(c) high beside low'}): {why_none}; "
                       + rounds_note)
            self.row(title, "inference p50 / p99", "high", f"not measured: {why_none}", "-", "", "FAIL")
        else:
            limit = a99 * self.a.p99_max
            st = "PASS" if c99 <= limit else "FAIL"
            few = min(n_a, n_c) < self.a.prio_min_rounds
            if few:
                st = "INFO"
            paired = m["p99_c_over_a"]
            alone_rel = sp["alone_p99"] / a99 if sp["alone_p99"] is not None else None
            note = ((f"not judged: only {min(n_a, n_c)} round(s) with data (--prio-min-rounds "
                     f"{self.a.prio_min_rounds}); " if few else "")
                    + f"(c) inference --priority high beside training --priority low: median p99 {c99:.3f} ms "
                    f"({pct(c99)}) vs (a) alone without the shim {a99:.3f} ms, medians over {n_c} / {n_a} round(s); "
                    f"per round (c) {vals(s['shim_both_p99'], '{:.3f}')} ms, (a) {vals(s['alone_p99'], '{:.3f}')} "
                    f"ms; paired (c)/(a) per round {vals(s['p99_c_over_a'], '{:.3f}')}"
                    + (f", median {paired:.3f}" if paired is not None else "")
                    + (f"; (a) spread {alone_rel * 100:.1f}% across rounds" if alone_rel is not None else "")
                    + (f" (wider than the {(self.a.p99_max - 1) * 100:g}% margin)"
                       if alone_rel is not None and alone_rel > self.a.p99_max - 1 else "")
                    + f"; median p50 (c) {fmt_ms(m['shim_both_p50'])}, (a) {fmt_ms(m['alone_p50'])}"
                    + f"; (d) plain sharing (no shim): median p99 "
                    + (f"{d99:.3f} ms ({pct(d99)}), per round {vals(s['plain_p99'], '{:.3f}')} ms"
                       if d99 is not None else "n/a"))
            st = self.check("priority_infer_p99", st, f"<={limit:.3f}ms(median_alone+{(self.a.p99_max - 1) * 100:g}%)",
                            f"{c99:.3f}ms({pct(c99)})", note, base=d99, shim=c99, unit="ms")
            self.row(title, f"(c) inference p50 / p99, median of {n_c} round(s)", "high",
                     (f"p50 {m['shim_both_p50']:.2f} ms, " if m["shim_both_p50"] is not None else "")
                     + f"p99 {c99:.2f} ms ({pct(c99)})",
                     f"(d) {d99:.2f} ms ({pct(d99)})" if d99 is not None else "n/a",
                     f"≤ median alone {a99:.2f} ms + {(self.a.p99_max - 1) * 100:g}%", st)
        # training kept
        n_ta = sum(x is not None for x in s["train_alone"])
        n_tc = sum(x is not None for x in s["train_shim"])
        if kept is None:
            self.check("priority_train_kept", "FAIL", "data", "none",
                       f"not measured ({'training alone' if not ta else 'training low beside high'}): {why_none}")
            self.row(title, "training throughput", "low", f"not measured: {why_none}", "-", "", "FAIL")
        else:
            st = "PASS" if kept >= self.a.train_min else "FAIL"
            few = min(n_ta, n_tc) < self.a.prio_min_rounds
            if few:
                st = "INFO"
            per = series(lambda e: e["train_kept"])
            note = ((f"not judged: only {min(n_ta, n_tc)} round(s) with data (--prio-min-rounds "
                     f"{self.a.prio_min_rounds}); " if few else "")
                    + f"training --priority low beside high-priority inference (c): median {tc:.3f} it/s over "
                    f"{n_tc} round(s) vs alone (no shim) median {ta:.3f} it/s over {n_ta} round(s); per round "
                    f"(c) {vals(s['train_shim'], '{:.3f}')} it/s, alone {vals(s['train_alone'], '{:.3f}')} it/s, "
                    f"kept {vals([None if x is None else x * 100 for x in per], '{:.1f}')}%; (d) plain sharing: "
                    + (f"median {td:.3f} it/s ({kept_plain * 100:.1f}%), per round {vals(s['train_plain'], '{:.3f}')}"
                       if kept_plain is not None else "n/a"))
            st = self.check("priority_train_kept", st, f">={self.a.train_min * 100:g}%", f"{kept * 100:.1f}%",
                            note, base=kept_plain * 100 if kept_plain is not None else None, shim=kept * 100,
                            unit="%")
            self.row(title, f"training throughput, median of {n_tc} round(s)", "low",
                     f"{kept * 100:.1f}% of alone ({tc:.2f} it/s)",
                     f"{kept_plain * 100:.1f}% ({td:.2f} it/s)" if kept_plain is not None else "n/a",
                     f"≥ {self.a.train_min * 100:g}% of median alone ({ta:.2f} it/s)", st)
        self.priority_sweep(sweeps, measured, a99, ta, c99, kept, d99, kept_plain)
        self.priority_pooled(title, {str(e["round"]) for e in measured})

    # Pooled percentiles: (process, phase) -> what it measures. A window's p99 is its ~6th worst
    # request, so the median of per-round p99s moves with a handful of requests; pooling every
    # measured round's requests gives one p99 over thousands. INFO beside the judged medians.
    POOLED = (("alone", "infer_noshim", "(a) inference alone, no shim"),
              ("shim_idle", "infer_high", "(b) high, low joined but idle"),
              ("shim_both", "infer_high", "(c) high beside busy low"),
              ("plain", "infer_noshim", "(d) plain sharing, no shim"))

    def priority_pooled(self, title, rounds):
        d = self.a.latency_dir
        if not d or not os.path.isdir(d):
            return
        lat = {}  # (process, phase) -> latencies (ms) of the measured rounds
        for fname in sorted(os.listdir(d)):
            if not fname.endswith(".txt"):
                continue
            proc = fname[:-4]
            with open(os.path.join(d, fname), encoding="utf-8") as f:
                for text in f:
                    m = re.match(r"LATENCY window=\d+ tag=(\d+)\.(\S+) ms=(\S*)$", text.strip())
                    if m and m.group(1) in rounds:
                        values = [float(v) for v in m.group(3).split(",") if v]
                        lat.setdefault((proc, m.group(2)), []).extend(values)
        pooled = {}
        for (proc, phase), values in sorted(lat.items()):
            v = sorted(values)
            pooled[f"{proc}/{phase}"] = {"requests": len(v), "p50_ms": v[len(v) // 2],
                                         "p99_ms": v[min(len(v) - 1, int(0.99 * len(v)))]}
        self.data.setdefault("priority", {})["pooled"] = pooled
        ref = pooled.get("infer_noshim/alone")
        if ref is None:
            return
        a99 = ref["p99_ms"]
        rel = lambda x: f"{(x / a99 - 1) * 100:+.1f}%"  # noqa: E731
        parts = []
        for phase, proc, what in self.POOLED:
            q = pooled.get(f"{proc}/{phase}")
            if q is not None:
                parts.append(f"{what}: p99 {q['p99_ms']:.3f} ms ({rel(q['p99_ms'])}), p50 {q['p50_ms']:.3f} ms, "
                             f"{q['requests']} requests")
        for key, q in pooled.items():
            proc, phase = key.split("/")
            if phase.startswith("sweep") and proc.startswith("infer_high_"):
                parts.append(f"variant {phase}: p99 {q['p99_ms']:.3f} ms ({rel(q['p99_ms'])}), "
                             f"{q['requests']} requests")
        c = pooled.get("infer_high/shim_both")
        self.check("priority_pooled_p99", "INFO", "-",
                   f"{c['p99_ms']:.3f}ms({rel(c['p99_ms'])})" if c else "n/a",
                   f"every measured round's requests pooled per phase (not judged; the verdict is the median "
                   f"rule above): " + "; ".join(parts))
        if c is not None:
            self.row(title, "(c) inference p99, all rounds' requests pooled", "high",
                     f"{c['p99_ms']:.2f} ms ({rel(c['p99_ms'])}, {c['requests']} requests)",
                     f"(a) {a99:.2f} ms ({ref['requests']} requests)", "INFO", "INFO")

    def priority_sweep(self, sweeps, measured, a99, ta, c99_default, kept_default, d99, kept_plain):
        """INFO: per XPU_SCHED_TUNABLES variant, its (c) phase in every round, medians next to the default."""
        if not sweeps:
            return
        runs = []
        for key, sw in sorted(sweeps.items(), key=lambda kv: kv[1]["k"]):
            k, tun = sw["k"], sw["tunables"]
            title = f"priority, XPU_SCHED_TUNABLES={tun}"
            e = {"k": k, "tunables": tun}
            runs.append(e)
            if "skipped" in sw:
                e["error"] = f"skipped ({sw['skipped']})"
                self.check(f"priority_sweep{k}", "INFO", "-", "none", f"XPU_SCHED_TUNABLES={tun}: {e['error']}")
                self.row(title, "inference + training", "high / low", e["error"], "-", "INFO", "INFO")
                continue
            p99s = [p99_of(r["sweep"].get(key, {}).get("infer")) for r in measured]
            p50s = [p50_of(r["sweep"].get(key, {}).get("infer")) for r in measured]
            trs = [r["sweep"].get(key, {}).get("train_it_per_s") for r in measured]
            e.update(per_round_p99_ms=p99s, per_round_train_it_per_s=trs, p99_ms=median(p99s), p50_ms=median(p50s),
                     train_it_per_s=median(trs))
            e["p99_vs_alone"] = e["p99_ms"] / a99 if a99 and e["p99_ms"] is not None else None
            e["train_kept"] = ratio(e["train_it_per_s"], ta)
            if e["p99_ms"] is None:
                e["error"] = "no measured round"
                self.check(f"priority_sweep{k}", "INFO", "-", "none", f"XPU_SCHED_TUNABLES={tun}: not measured")
                self.row(title, "inference + training", "high / low", "not measured", "-", "INFO", "INFO")
                continue
            vs = f"({(e['p99_ms'] / a99 - 1) * 100:+.1f}%)" if a99 else ""
            n = sum(x is not None for x in p99s)
            self.check(f"priority_sweep{k}_infer_p99", "INFO", "-", f"{e['p99_ms']:.3f}ms{vs}",
                       f"XPU_SCHED_TUNABLES={tun}: inference --priority high beside training --priority low, its own "
                       f"(c) phase in each round: median p99 {e['p99_ms']:.3f} ms over {n} round(s) (per round "
                       + ", ".join("-" if x is None else f"{x:.3f}" for x in p99s) + " ms); median alone (no shim) "
                       + (f"{a99:.3f} ms" if a99 else "n/a") + "; default tunables (c) "
                       + (f"{c99_default:.3f} ms" if c99_default is not None else "n/a")
                       + "; plain sharing (d) " + (f"{d99:.3f} ms" if d99 is not None else "n/a"),
                       base=d99, shim=e["p99_ms"], unit="ms")
            self.row(title, f"inference p99, median of {n} round(s)", "high", f"{e['p99_ms']:.2f} ms {vs}",
                     f"default {c99_default:.2f} ms" if c99_default is not None else "n/a",
                     f"≤ alone + {(self.a.p99_max - 1) * 100:g}% (INFO)", "INFO")
            kt = e["train_kept"]
            self.check(f"priority_sweep{k}_train_kept", "INFO", "-",
                       f"{kt * 100:.1f}%" if kt is not None else "n/a",
                       f"XPU_SCHED_TUNABLES={tun}: training --priority low: median "
                       + (f"{e['train_it_per_s']:.3f} it/s" if e["train_it_per_s"] is not None else "n/a")
                       + " (per round " + ", ".join("-" if x is None else f"{x:.3f}" for x in trs)
                       + " it/s); median alone " + (f"{ta:.3f} it/s" if ta else "n/a") + "; default tunables "
                       + (f"{kept_default * 100:.1f}%" if kept_default is not None else "n/a")
                       + "; plain sharing (d) " + (f"{kept_plain * 100:.1f}%" if kept_plain is not None else "n/a"),
                       base=kept_plain * 100 if kept_plain is not None and kt is not None else None,
                       shim=kt * 100 if kt is not None else None, unit="%")
            self.row(title, "training throughput, median", "low",
                     f"{kt * 100:.1f}% of alone" if kt is not None else "n/a",
                     f"default {kept_default * 100:.1f}%" if kept_default is not None else "n/a",
                     f"≥ {self.a.train_min * 100:g}% of alone (INFO)", "INFO")
        self.data["priority_sweep"] = {"runs": runs}

    def gate(self, scenario="gate", shim_mode="shim", title="gate uncontended (--compute 100)",
             setting="gate on, alone", judged=True):
        ran, skip, _ = self.scenario(scenario)
        if not ran:
            return
        rows = [r for r in self.rows if r.get("scenario") == scenario]
        failed = [r for r in rows if r.get("error", "cudaSuccess") != "cudaSuccess" and "kind" not in r]
        if skip or failed:
            why = f"skipped ({skip})" if skip else f"{failed[0].get('name', scenario)}: {failed[0]['error']}"
            return self.missing(scenario, why, ["launch"])
        lines = [("RESULT " + " ".join(f"{k}={v}" for k, v in r.items() if k != "scenario"))
                 for r in rows if r.get("kind") == "micro"]
        cross, inproc, errors = parse_lines(lines, shim_mode)
        for err in errors:
            self.check(f"{scenario}_error", "FAIL", "no_error", "error", err)
        aa = "A/A run, both sides without the shim; " if self.aa else ""
        self.data[scenario] = {}
        if not lines:
            return self.missing(scenario, "no driver_microbench results", ["launch"])
        for op, spec in GATE_TARGETS.items():
            for table, judge in ((cross, judge_cross), (inproc, judge_inproc)):
                runs = table.get(op)
                if not runs or not runs["shim"] or (judge is judge_cross and not runs["base"]):
                    continue
                status, text = judge(op, runs, aa, spec=spec, name=f"{scenario}_{op}")
                fields = dict(re.findall(r"(\w+)=(\S+)", text.partition(" note=")[0]))
                name = text.split()[1]
                if (self.aa or not judged) and status in ("PASS", "FAIL"):
                    status = "INFO"
                self.checks.append({"name": name, "status": status, "expected": fields["expected"],
                                    "measured": fields["measured"], "note": text.partition(" note=")[2],
                                    **{k: fields[k] for k in ("base", "shim", "ratio", "delta", "unit")}})
                self.row(title, name[len(scenario) + 1:], setting, f"{fields['shim']} ns",
                         f"{fields['base']} ns (native)", f"≤ +2% (ratio {fields['ratio']})", status)
                self.data[scenario][name] = {k: fields[k] for k in ("base", "shim", "ratio", "delta")}

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
        # Not an acceptance criterion (the gate is contended by design there): what the latency-
        # critical process pays per launch for its virtual queue and sampled probes.
        self.gate("gate_high", "high", "gate, high priority beside an idle low one",
                  "--priority high, a --priority low process joined", judged=False)
        self.shares("pair_30_70", "30/70 share", "pair_shim", "pair_plain", {"p30": 30, "p70": 70})
        self.shares("quad_10_20_30_40", "10/20/30/40 share", "quad_shim", "quad_plain",
                    {"q10": 10, "q20": 20, "q30": 30, "q40": 40})
        self.alone("cap30_alone", "cap 30 alone", "cap", "cap30", "cap", 30)
        self.alone("share30_other_idle", "share 30, other process idle (work conservation)", "conserve",
                   "s30", "share", 30)
        self.priority()
        self.snapshot()
        if not self.checks:
            self.check("compute_results", "FAIL", "RESULT_lines", "none", "no scenario produced results")

    def priority_markdown(self):
        p = self.data.get("priority")
        if not p or not p["rounds"]:
            return []
        return priority_tables(p, self.data.get("priority_sweep"))

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
        out += self.priority_markdown()
        if "status_snapshot" in self.data:
            snap = cell(self.data["status_snapshot"]["summary"])
            out += ["", f"`xpu-run status --json` during 30/70: {snap}"]
        out.append("")
        return "\n".join(out)


def _ms(v, ref=None):
    if v is None:
        return "-"
    return f"{v:.2f}" + (f" ({(v / ref - 1) * 100:+.1f}%)" if ref else "")


def _its(v, ref=None):
    if v is None:
        return "-"
    return f"{v:.2f}" + (f" ({v / ref * 100:.1f}%)" if ref else "")


def priority_tables(p, sweep):
    """compute.md's per-round table (and the sweep's) from results.priority / results.priority_sweep."""
    med, sp = p["median"], p["spread"]
    a_med, ta_med = med["alone_p99"], med["train_alone"]
    g = lambda v: "?" if v is None else f"{v:g}"  # noqa: E731
    out = ["", f"Priority rounds (ResNet-50, batch-1 inference at {g(p.get('rate'))} req/s, training batch 64): "
           f"each round runs its phases back to back, {g(p.get('phase_s'))} s each (the first "
           f"{g(p.get('settle_s'))} s not measured), in the order shown; the processes stay alive across "
           "rounds. p99 in ms; (c)/(a) per round; training it/s with % of that round's training alone. The "
           "judged values are the medians (the table above); the spread row is max − min over the rounds "
           "(and its % of the median).", "",
           "| round | order | (a) alone, no shim | (b) high, low idle | (c) high beside low | (c)/(a) | "
           "(d) plain sharing | training alone | training low in (c) | training in (d) | wall time |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in p["rounds"]:
        took = f"{e['elapsed_s']:.1f} s" if e.get("elapsed_s") is not None else "-"
        if "skipped" in e:
            out.append(f"| {e['round']} | SKIP ({cell(e['skipped'])}) | | | | | | | | | {took} |")
            continue
        ta = e["train_alone_it_per_s"]
        ca = f"{e['p99_c_over_a']:.3f}" if e["p99_c_over_a"] is not None else "-"
        out.append(f"| {e['round']} | {' '.join(e['order'])} | {_ms(p99_of(e['alone']))} | "
                   f"{_ms(p99_of(e['shim_idle']))} | {_ms(p99_of(e['shim_both']))} | {ca} | "
                   f"{_ms(p99_of(e['plain']))} | {_its(ta)} | {_its(e['train_shim_it_per_s'], ta)} | "
                   f"{_its(e['train_plain_it_per_s'], ta)} | {took} |")
    ca_med = f"{med['p99_c_over_a']:.3f}" if med["p99_c_over_a"] is not None else "-"
    out.append(f"| **median** | | {_ms(a_med)} | {_ms(med['shim_idle_p99'], a_med)} | "
               f"{_ms(med['shim_both_p99'], a_med)} | {ca_med} | {_ms(med['plain_p99'], a_med)} | {_its(ta_med)} | "
               f"{_its(med['train_shim'], ta_med)} | {_its(med['train_plain'], ta_med)} | |")
    def spr(key):  # max - min, and as % of the median
        v, m = sp[key], med[key]
        return "-" if v is None else f"{v:.2f}" + (f" ({v / m * 100:.1f}%)" if m else "")

    out.append(f"| spread | | {spr('alone_p99')} | {spr('shim_idle_p99')} | {spr('shim_both_p99')} | "
               + (f"{sp['p99_c_over_a']:.3f}" if sp["p99_c_over_a"] is not None else "-")
               + f" | {spr('plain_p99')} | {spr('train_alone')} | {spr('train_shim')} | {spr('train_plain')} | |")
    if sweep:
        out += ["", "Priority sweep (INFO; the default is the judged one): per `XPU_SCHED_TUNABLES` value a shim "
                "pair of its own, inference --priority high beside training --priority low, one (c) phase per "
                "round; p99 in ms against the median alone, training against the median training alone.", "",
                "| XPU_SCHED_TUNABLES | p99 per round | median p99 | training it/s per round | median training |",
                "|---|---|---|---|---|"]
        rows = [e for e in p["rounds"] if "skipped" not in e]
        out.append("| default (the judged (c)) | " + ", ".join(_ms(p99_of(e["shim_both"])) for e in rows)
                   + f" | {_ms(med['shim_both_p99'], a_med)} | "
                   + ", ".join(_its(e["train_shim_it_per_s"]) for e in rows)
                   + f" | {_its(med['train_shim'], ta_med)} |")
        for e in sweep["runs"]:
            if "per_round_p99_ms" not in e:
                out.append(f"| {cell(e['tunables'])} | not measured: {cell(e.get('error', '?'))} | | | |")
                continue
            out.append(f"| {cell(e['tunables'])} | " + ", ".join(_ms(x) for x in e["per_round_p99_ms"])
                       + f" | {_ms(e['p99_ms'], a_med)} | "
                       + ", ".join(_its(x) for x in e["per_round_train_it_per_s"])
                       + f" | {_its(e['train_it_per_s'], ta_med)} |")
    return out


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
    ap.add_argument("--latency-dir", help="priority: resnet50.py --latency-out files (NAME.txt per process)")
    ap.add_argument("--prio-min-rounds", type=int, default=2,
                    help="priority: fewer measured rounds than this make its verdicts INFO")
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
