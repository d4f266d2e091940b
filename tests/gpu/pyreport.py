"""Output protocol of the Python GPU test scripts; the same lines as tests/gpu/gpu_check.hpp.

    INFO pid=<pid>
    CHECK <name> status=PASS|FAIL|INFO|SKIP expected=<e> measured=<m> [note=<text to end of line>]

A script exits 0 when every CHECK passed, 1 otherwise, and 77 when its framework is missing (the
suite then reports SKIP, never PASS). Standard library only: the scripts import their framework
themselves, after this module, so that a missing framework is a clean SKIP.
"""

import argparse
import os
import re
import sys
import time

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
SKIP_EXIT = 77

_UNITS = {"": 1, "B": 1, "K": KIB, "k": KIB, "KiB": KIB, "M": MIB, "m": MIB, "MiB": MIB,
          "G": GIB, "g": GIB, "GiB": GIB}


def parse_size(text):
    """'4GiB', '512MiB', '4096m' or bytes -> int; strict, like the shim's own parser."""
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", text)
    if not m or m.group(2) not in _UNITS:
        raise argparse.ArgumentTypeError(f"bad size '{text}'")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parse_quota(text):
    return None if text == "none" else parse_size(text)


def arg_parser(description):
    """The options every quota script takes; --quota none is a baseline run without the shim."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quota", type=parse_quota, default=None, help="expected quota, or 'none'")
    p.add_argument("--chunk", type=parse_size, default=256 * MIB, help="allocation step")
    p.add_argument("--max-fill", type=parse_size, default=4 * GIB, help="fill cap without a quota")
    p.add_argument("--hold-ms", type=int, default=600, help="keep the peak for nvidia-smi")
    return p


def _token(value):
    text = str(value) if value is not None and str(value) != "" else "-"
    return re.sub(r"\s+", "_", text)


def first_line(text, limit=160):
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line[:limit]


class Report:
    def __init__(self):
        self.checks = 0
        self.failures = 0
        print(f"INFO pid={os.getpid()}", flush=True)

    def _emit(self, name, status, expected, measured, note):
        tail = f" note={note}" if note else ""
        print(f"CHECK {name} status={status} expected={_token(expected)} "
              f"measured={_token(measured)}{tail}", flush=True)

    def check(self, name, ok, expected, measured, note=""):
        self.checks += 1
        if not ok:
            self.failures += 1
        self._emit(name, "PASS" if ok else "FAIL", expected, measured, note)
        return ok

    def info(self, name, measured, note=""):
        self._emit(name, "INFO", "-", measured, note)

    def check_if(self, have_quota, name, ok, expected, measured, note=""):
        """A quota check under the shim; INFO in a baseline run (nothing to compare with)."""
        if have_quota:
            return self.check(name, ok, expected, measured, note)
        self.info(name, measured, note)
        return True

    def skip(self, reason):
        self._emit("framework", "SKIP", "importable", "missing", reason)
        sys.exit(SKIP_EXIT)

    def finish(self):
        sys.stdout.flush()
        sys.exit(0 if self.checks and not self.failures else 1)


def hold(ms):
    """Keep the peak alive long enough for nvidia-smi (100 ms sampling) to see it."""
    if ms > 0:
        time.sleep(ms / 1000.0)
