#!/usr/bin/env python3
"""A cross-built adaptk-stream's profile equals this machine's native one.

usage: profile_matches_native.py NATIVE TARGET MODEL...

Runs `profile MODEL -q` with both binaries (TARGET is the qemu wrapper script
of a cross build; QEMU_CPU in the environment picks the emulated CPU, so the
same check covers the Arm BF16 kernel and the fp32 fallback). Integer and
text columns (counts, dim, the K columns, method) must be identical; every
other number may differ only by float32 summation order: 1e-6 relative.
"""
import csv
import io
import subprocess
import sys

RELATIVE = 1e-6


def profile(binary, model):
    run = subprocess.run([binary, "profile", model, "-q"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{binary} profile {model}: exit {run.returncode}: {run.stderr.strip()}")
    return list(csv.DictReader(io.StringIO(run.stdout)))


def is_integer_or_text(value):
    try:
        float(value)
    except ValueError:
        return True
    return value.lstrip("-").isdigit()


def main():
    native, target, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    failures = 0
    for model in models:
        expected, actual = profile(native, model), profile(target, model)
        if [r["type"] for r in expected] != [r["type"] for r in actual] or not expected:
            print(f"{model}: rows differ: {[r['type'] for r in expected]} vs {[r['type'] for r in actual]}")
            failures += 1
            continue
        for want, got in zip(expected, actual):
            for column, value in want.items():
                other = got[column]
                if is_integer_or_text(value) or value == "":
                    same = value == other
                else:
                    a, b = float(value), float(other)
                    same = abs(a - b) <= RELATIVE * max(abs(a), abs(b))
                if not same:
                    print(f"{model}: type {want['type']}, {column}: native {value}, target {other}")
                    failures += 1
        print(f"{model}: {len(expected)} rows compared")
    sys.exit(1 if failures else 0)


main()
