#!/usr/bin/env python3
"""Turn the suite's check lines into $OUT/summary.md and $OUT/results.json.

    report.py --checks WORK/checks.txt --meta WORK/meta.txt --out $OUT

checks.txt holds, in order, lines written by run_all.sh:
    CHECK <case> <check> status=PASS|FAIL|INFO|SKIP expected=<e> measured=<m> [key=value ...] [note=<text>]
    CASE <case> rc=<exit status> seconds=<s> note=<description>
meta.txt holds key=value lines (card, driver, CUDA version, date, ...).

A case is FAIL if any of its checks failed, else SKIP if any was SKIP, else PASS if at least one check
passed; a case with no passing check at all is FAIL (a program that printed nothing proves nothing).
Benchmark checks carry base=/shim=/ratio=/delta=/unit= keys and get their own table.
"""

import argparse
import json
import os
import re
import sys

LINE = re.compile(r"^CHECK (\S+) (\S+) (.*)$")
CASE = re.compile(r"^CASE (\S+) (.*)$")


def parse_fields(text):
    """'a=1 b=2 note=free text' -> {'a': '1', 'b': '2', 'note': 'free text'}."""
    fields = {}
    head, sep, note = text.partition(" note=")
    if text.startswith("note="):
        head, sep, note = "", "note=", text[len("note="):]
    for token in head.split():
        key, _, value = token.partition("=")
        fields[key] = value
    if sep:
        fields["note"] = note.strip()
    return fields


def load(checks_path):
    cases = {}

    def case(cid):
        return cases.setdefault(cid, {"id": cid, "checks": [], "rc": None, "seconds": None,
                                      "description": ""})

    with open(checks_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = LINE.match(line)
            if m:
                fields = parse_fields(m.group(3))
                check = {"name": m.group(2), "status": fields.pop("status", "FAIL"),
                         "expected": fields.pop("expected", "-"), "measured": fields.pop("measured", "-"),
                         "note": fields.pop("note", "")}
                check.update(fields)
                case(m.group(1))["checks"].append(check)
                continue
            m = CASE.match(line)
            if m:
                fields = parse_fields(m.group(2))
                c = case(m.group(1))
                c["rc"] = int(fields["rc"]) if fields.get("rc", "").lstrip("-").isdigit() else None
                c["seconds"] = float(fields.get("seconds", "0") or 0)
                c["description"] = fields.get("note", "")
    for c in cases.values():
        statuses = [ch["status"] for ch in c["checks"]]
        if "FAIL" in statuses:
            c["status"] = "FAIL"
        elif "SKIP" in statuses:
            c["status"] = "SKIP"
        elif "PASS" in statuses:
            c["status"] = "PASS"
        else:
            c["status"] = "FAIL"
            c["checks"].append({"name": "has_checks", "status": "FAIL", "expected": ">=1_passing_check",
                                "measured": "none", "note": "the case printed no passing CHECK line"})
    return list(cases.values())


def load_meta(path):
    meta = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep and key:
                    meta[key] = value.strip()
    except OSError:
        pass
    return meta


def human(value):
    """Big byte counts get a GiB/MiB reading next to the exact number."""
    m = re.fullmatch(r"([<>]=?)?(\d+)", str(value))
    if not m or int(m.group(2)) < (1 << 20):
        return str(value)
    n = int(m.group(2))
    unit = f"{n / (1 << 30):.2f} GiB" if n >= (1 << 30) else f"{n / (1 << 20):.0f} MiB"
    return f"{value} ({unit})"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def versions(cases):
    found = {}
    for c in cases:
        for ch in c["checks"]:
            if ch["name"].endswith("_version") and ch["status"] == "INFO":
                found.setdefault(ch["name"][: -len("_version")], ch["measured"])
    return found


def summary_md(meta, cases, out_dir=None):
    totals = {s: sum(c["status"] == s for c in cases) for s in ("PASS", "FAIL", "SKIP")}
    out = ["# xpushim real-GPU acceptance and benchmarks", ""]
    out += ["| | |", "|---|---|"]
    # source_digest names the tree that ran (tests/gpu/source_digest.sh); "commit" is read from the
    # copy's .git, which the device machine may not have refreshed.
    for key in ("date", "card", "memory_total", "driver", "cuda_driver", "nvcc", "host", "commit",
                "source_digest", "observer"):
        if key in meta:
            out.append(f"| {key} | {cell(meta[key])} |")
    for name, ver in sorted(versions(cases).items()):
        if name not in ("driver",):
            out.append(f"| {name} | {cell(ver)} |")
    out.append(f"| result | {totals['PASS']} PASS, {totals['FAIL']} FAIL, {totals['SKIP']} SKIP "
               f"(of {len(cases)} cases) |")
    if "wall_seconds" in meta:
        out.append(f"| suite wall time | {meta['wall_seconds']} s |")
    out += ["", "## Cases", "", "| case | result | seconds | what |", "|---|---|---|---|"]
    for c in cases:
        secs = "" if c["seconds"] is None else f"{c['seconds']:.1f}"
        out.append(f"| {c['id']} | **{c['status']}** | {secs} | {cell(c['description'])} |")

    # The compute benchmark writes its own table (configured vs delivered, next to plain sharing).
    compute_md = os.path.join(out_dir, "compute.md") if out_dir else None
    if compute_md and os.path.exists(compute_md):
        with open(compute_md, encoding="utf-8") as f:
            body = f.read().strip().splitlines()
        # Demote its headings one level under this document's.
        out += [""] + [("#" + line) if line.startswith("#") else line for line in body]

    bench = [(c, ch) for c in cases for ch in c["checks"] if "base" in ch and "shim" in ch
             and not c["id"].startswith("bench_compute")]
    if bench:
        out += ["", "## Benchmarks (same run, without vs with the shim; medians)", "",
                "| benchmark | without shim | with shim | ratio | delta | target | result |",
                "|---|---|---|---|---|---|---|"]
        for c, ch in bench:
            unit = ch.get("unit", "")
            out.append(f"| {ch['name']} | {ch['base']} {unit} | {ch['shim']} {unit} | {ch.get('ratio', '')} "
                       f"| {ch.get('delta', '')} {unit} | {cell(ch['expected'])} | {ch['status']} |")

    out += ["", "## Checks", "", "| case | check | expected | measured | result | note |",
            "|---|---|---|---|---|---|"]
    for c in cases:
        for ch in c["checks"]:
            out.append(f"| {c['id']} | {ch['name']} | {cell(human(ch['expected']))} | "
                       f"{cell(human(ch['measured']))} | {ch['status']} | {cell(ch['note'])} |")
    out.append("")
    return "\n".join(out), totals


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cases = load(a.checks)
    meta = load_meta(a.meta)
    text, totals = summary_md(meta, cases, a.out)
    with open(f"{a.out}/summary.md", "w", encoding="utf-8") as f:
        f.write(text)
    with open(f"{a.out}/results.json", "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "versions": versions(cases), "totals": totals, "cases": cases}, f,
                  indent=1)
        f.write("\n")
    print(f"report: {totals['PASS']} PASS, {totals['FAIL']} FAIL, {totals['SKIP']} SKIP")
    return 1 if totals["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
