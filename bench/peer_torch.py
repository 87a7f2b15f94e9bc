#!/usr/bin/python3
"""PyTorch's CPU build doing what bench_core does, for side-by-side ratios.

Same shapes, same step (forward, cross-entropy, backward, SGD), median of 7 runs.
Debian's PyTorch does its GEMMs in OpenBLAS: scripts/run-bench.sh runs this with
OPENBLAS_NUM_THREADS=1 beside PyTorch's own threads (no oversubscription) and with the
OpenBLAS kernel that is fastest on the machine; the kernel it ran is reported. Each
matmul is timed with OpenBLAS on 1 thread and on --threads, and the better one is kept.
Usage: peer_torch.py --threads N [--json FILE] [--quick]
"""
import argparse
import ctypes
import json
import os
import statistics
import time

import torch


def median_time(fn, iters, reps=7):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times)


def mlp_step_us(sizes, batch, iters):
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        w = (torch.randn(fan_in, fan_out) * 0.1).requires_grad_()
        b = torch.zeros(fan_out, requires_grad=True)
        layers.append((w, b))
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, sizes[-1], (batch,))

    def step():
        h = x
        for i, (w, b) in enumerate(layers):
            h = h @ w + b
            if i + 1 < len(layers):
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        for w, b in layers:
            w.grad = None
            b.grad = None
        loss.backward()
        with torch.no_grad():
            for w, b in layers:
                w.add_(w.grad, alpha=-0.01)
                b.add_(b.grad, alpha=-0.01)

    return median_time(step, iters) * 1e6


def openblas():
    """The OpenBLAS this process loaded (through PyTorch): path, kernel, config, threads."""
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "blas" not in os.path.basename(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {"lib": path, "core": lib.openblas_get_corename().decode(),
                    "config": lib.openblas_get_config().decode(),
                    "threads": lib.openblas_get_num_threads(), "_lib": lib}
        except (OSError, AttributeError):
            continue
    return None


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def matmul_gflops(n, blas, threads):
    """GFLOP/s of a @ b and the OpenBLAS thread count that gave it (1 or threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # loads OpenBLAS
    iters = 200 if n <= 256 else 40 if n <= 512 else 6 if n <= 1024 else 2
    configs = sorted({1, threads}) if blas else [None]
    best = (0.0, None)
    base = blas["_lib"].openblas_get_num_threads() if blas else None
    for _ in range(2):  # alternated, so the machine's noise hits both alike
        for t in configs:
            if t is not None:
                blas["_lib"].openblas_set_num_threads(t)
            g = 2.0 * n ** 3 / median_time(lambda: a @ b, iters, reps=3) / 1e9
            best = max(best, (g, t), key=lambda x: x[0])
    if blas:
        blas["_lib"].openblas_set_num_threads(base)
    return best


def add_gbs(n=16 * 1024 * 1024):
    a, b = torch.rand(n), torch.rand(n)
    return 3.0 * n * 4 / median_time(lambda: a + b, 5) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    a16, b16 = torch.rand(16), torch.rand(16)
    results = {
        "dispatch add 16 elems, no tape (us)": median_time(lambda: a16 + b16, 20000) * 1e6,
        "tiny MLP 16-32-4 b8 train step (us)": mlp_step_us([16, 32, 4], 8, 2000),
        "MLP 784-512-512-10 b64 train step (us)": mlp_step_us([784, 512, 512, 10], 64, 5 if args.quick else 50),
        "add f32 16M (GB/s)": add_gbs(),
    }
    blas = openblas()
    matmul_threads = {}
    for n in (256, 512, 1024) if args.quick else (256, 512, 1024, 2048):
        g, t = matmul_gflops(n, blas, args.threads)
        results[f"matmul f32 {n}^3 (GFLOP/s)"] = g
        matmul_threads[str(n)] = t
    out = {"peer": f"pytorch {torch.__version__}", "threads": args.threads, "cpu": cpu_model(),
           "openblas": {k: v for k, v in blas.items() if not k.startswith("_")} if blas else None,
           "matmul_openblas_threads": matmul_threads,
           "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")},
           "results": results}
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
