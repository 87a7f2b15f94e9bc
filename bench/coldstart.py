#!/usr/bin/env python3
"""Time to a program's first training-step line with cold OpenCL caches.

Each run gets fresh cache directories: XDG_CACHE_HOME (tapegrad's program cache, and
PoCL's where POCL_CACHE_DIR is unset) and POCL_CACHE_DIR (PoCL's kernel cache, which
PoCL takes before XDG_CACHE_HOME/pocl), so both start empty. The figures are wall
seconds from the spawn to the first line that matches --line, and the process's CPU
seconds (user + system of all its threads, read from /proc at that line), printed per
run and as the median with [min - max]. With --warm every cold run is followed by a run
on the same directories (both caches filled by the cold run). With --vs, a second
command runs in alternation with the first (A, B, A, B, ...), so that the machine's
noise falls on both alike: for A/B comparisons of two builds.

    bench/coldstart.py [--runs N] [--warm] [--line REGEX] [-- COMMAND ...] [--vs COMMAND ...]

The default command is the MLP example's first step on OpenCL:
build/examples/mlp_fashion_mnist --device opencl --limit 64. Measures, never asserts.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_CMD = ["build/examples/mlp_fashion_mnist", "--device", "opencl", "--limit", "64"]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system seconds of every thread of pid so far (fields 14, 15 of stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run_once(cmd, cache, line):
    """(wall, cpu) at the first stdout line matching line; the process runs to its end."""
    env = dict(os.environ, XDG_CACHE_HOME=cache, POCL_CACHE_DIR=os.path.join(cache, "pocl"))
    env.pop("TG_CL_CACHE", None)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    wall = cpu = None
    for text in p.stdout:
        if wall is None and line.search(text):
            wall, cpu = time.monotonic() - t0, cpu_seconds(p.pid)
    rc = p.wait()
    if rc != 0 or wall is None:
        sys.exit(f"coldstart: {' '.join(cmd)} exited {rc}" + ("" if wall else f", no line matched {line.pattern!r}"))
    return wall, cpu


def summary(xs):
    return f"{statistics.median(xs):6.2f} s [{min(xs):.2f} - {max(xs):.2f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warm", action="store_true", help="also time a second run on each cold run's caches")
    ap.add_argument("--line", default=r"^epoch \d+ step", help="regex of the line that ends the timing")
    ap.add_argument("cmd", nargs="*", help="the program and its arguments (after --)")
    argv = sys.argv[1:]
    vs = argv.index("--vs") if "--vs" in argv else len(argv)
    a = ap.parse_args(argv[:vs])
    cmds = [a.cmd or DEFAULT_CMD] + ([argv[vs + 1:]] if vs < len(argv) else [])
    line = re.compile(a.line)
    kinds = ["cold", "warm"] if a.warm else ["cold"]
    res = {(c, k): ([], []) for c in range(len(cmds)) for k in kinds}
    for r in range(a.runs):
        for c, cmd in enumerate(cmds):
            cache = tempfile.mkdtemp(prefix="tg_coldstart_")
            try:
                for k in kinds:
                    wall, cpu = run_once(cmd, cache, line)
                    res[c, k][0].append(wall)
                    res[c, k][1].append(cpu)
                    print(f"run {r + 1} {'AB'[c] if len(cmds) > 1 else ''}{k}: {wall:.2f} s wall, {cpu:.2f} s CPU",
                          flush=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    for c, cmd in enumerate(cmds):
        print(f"{'AB'[c] + ': ' if len(cmds) > 1 else ''}{' '.join(cmd)}; {a.runs} runs, median [min - max]")
        for k in kinds:
            print(f"  {k}: wall {summary(res[c, k][0])}, CPU {summary(res[c, k][1])}")


if __name__ == "__main__":
    main()
