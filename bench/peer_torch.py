#!/usr/bin/python3
"""PyTorch's CPU build doing what bench_core does, for side-by-side ratios.

Same shapes, same step (forward, cross-entropy, backward, SGD), median of 7 runs.
Usage: peer_torch.py --threads N [--json FILE] [--quick]
"""
import argparse
import json
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


def matmul_gflops(n):
    a, b = torch.randn(n, n), torch.randn(n, n)
    iters = 200 if n <= 256 else 40 if n <= 512 else 6 if n <= 1024 else 2
    return 2.0 * n ** 3 / median_time(lambda: a @ b, iters) / 1e9


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
    for n in (256, 512, 1024) if args.quick else (256, 512, 1024, 2048):
        results[f"matmul f32 {n}^3 (GFLOP/s)"] = matmul_gflops(n)
    out = {"peer": f"pytorch {torch.__version__}", "threads": args.threads, "results": results}
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
