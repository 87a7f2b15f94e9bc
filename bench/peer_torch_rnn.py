#!/usr/bin/python3
"""PyTorch's CPU LSTM on the shape bench_rnn.c times, for side-by-side figures.

torch.nn.LSTM(I, H), x (T, N, I) without grad, loss = output.sum(), gradients zeroed
in place each iteration (as bench_rnn does). Prints one JSON line: the median and
min/max milliseconds of forward and of forward+backward over the samples, the torch
version, whether oneDNN (mkldnn) is enabled, and the OpenBLAS kernel this process ran (or,
for torch 2.x wheels without OpenBLAS, the BLAS and oneDNN torch.__config__ names).
Usage: peer_torch_rnn.py --threads N --samples S --T 35 --N 32 --I 64 --H 256
Run it with OPENBLAS_NUM_THREADS=1 and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset. Unless
OMP_WAIT_POLICY is set, it runs itself twice, under OpenMP's default wait (spinning) and
under OMP_WAIT_POLICY=passive, and prints the faster (on a machine with more runnable
threads than cores, spinning threads lose many times over); the kernels say which.
"""
import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time

import torch


def load_tapegrad_bench_peer():
    """tapegrad-bench's PyTorch peer (tools/bench/peer_torch.py), for its OpenBLAS probe."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "bench", "peer_torch.py")
    spec = importlib.util.spec_from_file_location("tapegrad_bench_peer_torch", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


openblas_core = load_tapegrad_bench_peer().openblas_core


def best_wait_policy():
    """Runs this script under each OpenMP wait policy; prints the run with the faster step."""
    runs = []
    for wait in (None, "passive"):
        env = dict(os.environ, OMP_WAIT_POLICY=wait or "")
        if wait is None:
            del env["OMP_WAIT_POLICY"]
        env["TG_PEER_WAIT_CHILD"] = "1"
        p = subprocess.run([sys.executable] + sys.argv, env=env, capture_output=True, text=True, check=True)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        out["openblas_core"] += f"; omp wait {wait or 'default'}"
        runs.append(out)
    print(json.dumps(min(runs, key=lambda r: r["step_ms"])))


def main():
    if "OMP_WAIT_POLICY" not in os.environ and "TG_PEER_WAIT_CHILD" not in os.environ:
        return best_wait_policy()
    ap = argparse.ArgumentParser()
    for k, v in (("threads", 2), ("samples", 15), ("T", 35), ("N", 32), ("I", 64), ("H", 256)):
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = torch.nn.LSTM(a.I, a.H)
    x = torch.randn(a.T, a.N, a.I)
    params = list(m.parameters())

    def fwd():
        with torch.no_grad():
            m(x)

    def step():
        for p in params:
            if p.grad is not None:
                p.grad.zero_()
        y, _ = m(x)
        y.sum().backward()

    out = {"torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
           "threads": torch.get_num_threads()}
    for name, fn in (("fwd", fwd), ("step", step)):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(a.samples):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        out[name + "_ms"] = round(statistics.median(ts), 4)
        out[name + "_min"], out[name + "_max"] = round(min(ts), 4), round(max(ts), 4)
    core = openblas_core()
    if core == "none":  # the PyPI wheels: MKL and oneDNN, as torch.__config__ says
        cfg = torch.__config__.show()
        blas = re.search(r"BLAS_INFO=(\w+)", cfg)
        dnn = re.search(r"MKL-DNN (v[\w.]+)", cfg)
        core = f"BLAS {blas.group(1) if blas else '?'}, oneDNN {dnn.group(1) if dnn else '?'}"
    out["openblas_core"] = core
    print(json.dumps(out))


if __name__ == "__main__":
    main()
