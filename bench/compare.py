#!/usr/bin/env python3
"""Side-by-side table of tapegrad and its peers from the JSON files of one run.

Each benchmark ran in alternation (tapegrad, peer, tapegrad, peer, ...); the figure
kept is the median over rounds. Usage: compare.py OUTDIR
"""
import glob
import json
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


def main():
    out = sys.argv[1]
    tg_runs = load(os.path.join(out, "core-*.json"))
    torch_runs = load(os.path.join(out, "torch-*.json"))
    bw_runs = load(os.path.join(out, "bandwidth-*.json"))
    tg = {}
    for run in tg_runs:
        for r in run["results"]:
            tg.setdefault(r["name"], []).append((r["value"], r["unit"]))
    peer = {}
    for run in torch_runs:
        for k, v in run["results"].items():
            peer.setdefault(k, []).append(v)
    print(f"{'benchmark':44} {'tapegrad':>12} {'PyTorch':>12}  tapegrad/PyTorch")
    for name, vals in tg.items():
        value, unit = statistics.median(v for v, _ in vals), vals[0][1]
        pname, better = PAIRS.get(name, (None, None))
        line = f"{name:44} {value:10.2f} {unit:>7}"
        if pname and pname in peer:
            p = statistics.median(peer[pname])
            ratio = value / p
            note = "time ratio (lower is better)" if better == "lower" else "throughput ratio"
            line += f" {p:12.2f}  {ratio:6.2f}x  {note}"
        print(line)
    if bw_runs:
        tri = statistics.median(r["triad_gbs"] for r in bw_runs)
        add = statistics.median(r["add_gbs"] for r in bw_runs)
        mul = statistics.median(r["mul_gbs"] for r in bw_runs)
        line = f"{'tg_add / tg_mul f32 16M vs triad':44} {add:6.1f}/{mul:.1f} GB/s  triad {tri:.1f} GB/s: {100*add/tri:.0f}%/{100*mul/tri:.0f}%"
        if "add f32 16M (GB/s)" in peer:
            line += f"  (PyTorch add {statistics.median(peer['add f32 16M (GB/s)']):.1f} GB/s)"
        print(line)


if __name__ == "__main__":
    main()
