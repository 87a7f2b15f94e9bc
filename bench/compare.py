#!/usr/bin/env python3
"""Side-by-side table of tapegrad and its peers from the JSON files of one run.

Each benchmark ran in alternation (tapegrad, peer, tapegrad, peer, ...); the figure
kept is the median over rounds, printed with the range [min-max] over the rounds, and
ratios are printed to three significant digits. The header names the CPU, its measured
FMA peak and triad bandwidth, and the kernel the peer's OpenBLAS ran.
Usage: compare.py OUTDIR
"""
import glob
import json
import math
import os
import statistics
import sys

# tapegrad name -> (peer name, "lower" if smaller is better)
PAIRS = {
    "dispatch tg_add 16 elems, no tape": ("dispatch add 16 elems, no tape (us)", "lower"),
    "tiny MLP 16-32-4 b8 train step": ("tiny MLP 16-32-4 b8 train step (us)", "lower"),
    "MLP 784-512-512-10 b64 train step": ("MLP 784-512-512-10 b64 train step (us)", "lower"),
    "matmul f32 256x256x256": ("matmul f32 256^3 (GFLOP/s)", "higher"),
    "matmul f32 512x512x512": ("matmul f32 512^3 (GFLOP/s)", "higher"),
    "matmul f32 1024x1024x1024": ("matmul f32 1024^3 (GFLOP/s)", "higher"),
    "matmul f32 2048x2048x2048": ("matmul f32 2048^3 (GFLOP/s)", "higher"),
}


def load(pattern):
    return [json.load(open(p)) for p in sorted(glob.glob(pattern))]


def sig(x, digits=3):
    """x with at least `digits` significant digits and no exponent: 0.00123, 1.12, 52174."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def stat(values):
    """'median [min-max]' of the rounds."""
    m = statistics.median(values)
    if len(values) < 2:
        return m, sig(m)
    return m, f"{sig(m)} [{sig(min(values))}-{sig(max(values))}]"


def machine_header(tg_runs, bw_runs, torch_runs):
    machines = [r["machine"] for r in tg_runs + bw_runs if "machine" in r]
    if machines:
        cpu = machines[0]["cpu"]
        peak1 = max(m["peak1_gflops"] for m in machines)
        peak = max(m["peak_gflops"] for m in machines)
        triad = [m["triad_gbs"] for m in machines]
        t = machines[0]["threads"]
        print(f"CPU: {cpu}, {machines[0]['cpus']} CPUs usable; loadavg during the run "
              f"{min(m['loadavg'] for m in machines):.2f}-{max(m['loadavg'] for m in machines):.2f}")
        print(f"measured: f32 FMA peak {peak1:.1f} GFLOP/s on 1 thread, {peak:.1f} on {t} "
              f"({machines[0]['isa']}, best probe); triad {stat(triad)[1]} GB/s on {t} threads")
    if torch_runs:
        r = torch_runs[0]
        ob = r.get("openblas") or {}
        env = r.get("env", {})
        print(f"peer: PyTorch {r['peer'].split()[-1]} on {r['threads']} threads; OpenBLAS kernel "
              f"{ob.get('core', '?')} ({ob.get('config', 'not found')}), OpenBLAS threads "
              f"{env.get('OPENBLAS_NUM_THREADS') or ob.get('threads', '?')} beside PyTorch's, "
              f"OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE') or '(unset)'}")
        mt = r.get("matmul_openblas_threads")
        if mt:
            print("  PyTorch matmul: best of OpenBLAS on 1 thread and on "
                  f"{r['threads']}; it used " + ", ".join(f"{n}^3: {t}" for n, t in mt.items()))
    print(f"figures: median [min-max] over {max(len(tg_runs), len(torch_runs))} alternated rounds")


def main():
    out = sys.argv[1]
    tg_runs = load(os.path.join(out, "core-*.json"))
    torch_runs = load(os.path.join(out, "torch-*.json"))
    bw_runs = load(os.path.join(out, "bandwidth-*.json"))
    if not tg_runs:
        sys.exit(f"compare.py: no core-*.json in {out}")
    machine_header(tg_runs, bw_runs, torch_runs)
    tg = {}
    for run in tg_runs:
        for r in run["results"]:
            tg.setdefault(r["name"], []).append((r["value"], r["unit"]))
    peer = {}
    for run in torch_runs:
        for k, v in run["results"].items():
            peer.setdefault(k, []).append(v)
    print(f"{'benchmark':36} {'unit':8} {'tapegrad':>24} {'PyTorch':>24}  tapegrad/PyTorch")
    for name, vals in tg.items():
        value, text = stat([v for v, _ in vals])
        unit = vals[0][1]
        pname, better = PAIRS.get(name, (None, None))
        line = f"{name:36} {unit:8} {text:>24}"
        if pname and pname in peer:
            p, ptext = stat(peer[pname])
            note = "time ratio (lower is better)" if better == "lower" else "throughput ratio"
            line += f" {ptext:>24}  {sig(value / p):>6}x  {note}"
        print(line)
    if bw_runs:
        tri = [r["triad_gbs"] for r in bw_runs]
        for key, label in (("add_gbs", "tg_add f32 16M"), ("mul_gbs", "tg_mul f32 16M"), ("sum_gbs", "tg_sum f32 16M")):
            v, text = stat([r[key] for r in bw_runs])
            line = f"{label + ' (bench_bandwidth)':36} {'GB/s':8} {text:>24}"
            if key == "add_gbs" and "add f32 16M (GB/s)" in peer:
                p, ptext = stat(peer["add f32 16M (GB/s)"])
                line += f" {ptext:>24}  {sig(v / p):>6}x  throughput ratio"
            line += f"  ({sig(100 * v / statistics.median(tri))}% of triad)"
            print(line)


if __name__ == "__main__":
    main()
