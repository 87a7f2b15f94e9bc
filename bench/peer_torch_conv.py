#!/usr/bin/python3
"""PyTorch's CPU conv2d on the shapes bench_conv.c gives it, for side-by-side figures.

Forward is F.conv2d; backward-data and backward-weight are aten.convolution_backward
with one output mask each (what autograd calls). Prints one JSON object a line:
{"i": shape index, "dir": "fwd"|"bwd_data"|"bwd_weight", "gflops": median of samples
(wall clock), "cpu_gflops": the same per CPU second of the process}.
Usage: peer_torch_conv.py --threads N --samples S --shape N,C,H,W,OC,KH,KW,sh,sw,ph,pw,dh,dw,groups ...
Run it with OPENBLAS_NUM_THREADS=1 and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def gflops_of(fn, flop, samples, min_s=0.05):
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, int(min_s / one))
    rates, crates = [], []
    for _ in range(samples):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(reps):
            fn()
        t1, c1 = time.perf_counter(), time.process_time()
        rates.append(flop * reps / (t1 - t0) / 1e9)
        crates.append(flop * reps / max(c1 - c0, 1e-9) / 1e9)
    return statistics.median(rates), statistics.median(crates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--shape", action="append", default=[])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for i, s in enumerate(a.shape):
        N, C, H, W, OC, KH, KW, sh, sw, ph, pw, dh, dw, groups = map(int, s.split(","))
        x = torch.randn(N, C, H, W)
        w = torch.randn(OC, C // groups, KH, KW) * 0.1
        b = torch.randn(OC)
        with torch.no_grad():
            y = F.conv2d(x, w, b, (sh, sw), (ph, pw), (dh, dw), groups)
        dy = torch.randn_like(y)
        OH, OW = y.shape[2], y.shape[3]
        flop = 2.0 * N * OC * (C // groups) * KH * KW * OH * OW

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, b, (sh, sw), (ph, pw), (dh, dw), groups)

        def bwd(mask):
            def f():
                torch.ops.aten.convolution_backward(dy, x, w, [OC], [sh, sw], [ph, pw], [dh, dw],
                                                    False, [0, 0], groups, mask)
            return f

        for d, fn in (("fwd", fwd), ("bwd_data", bwd([True, False, False])),
                      ("bwd_weight", bwd([False, True, False]))):
            gf, gc = gflops_of(fn, flop, a.samples)
            print(json.dumps({"i": i, "dir": d, "gflops": round(gf, 2), "cpu_gflops": round(gc, 2)}))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
