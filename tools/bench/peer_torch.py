#!/usr/bin/python3
"""tapegrad-bench's PyTorch peer: the same workloads (read from the JSON spec tapegrad-bench
writes), timed the same way (a warm-up call, then samples until the budget is spent,
median/min/max), in eager mode on the CPU, and on CUDA too where torch 2.x sees a GPU. The
models are PyTorch's own (torch.nn and torchvision) of the same architecture. Prints
{"target", "note", "results"} as JSON; the target is "pytorch-cpu" under torch 1.x
(Debian's), "pytorch2-cpu" under torch 2.x (build/peers-venv), "pytorch2-cuda" per result.

tapegrad-bench runs it with OPENBLAS_NUM_THREADS=1 beside torch's own threads, and with
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (or the core type it was given), so that
Debian's PyTorch runs its GEMMs at its best; the note names the BLAS and kernel it ran
(the OpenBLAS core, or MKL/oneDNN from torch.__config__ for the PyPI wheels).
Usage: peer_torch.py --spec FILE
"""
import argparse
import ctypes
import json
import os
import re
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def openblas_core():
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "blas" not in os.path.basename(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return "none"


def kernels():
    """What computes torch's GEMMs and convolutions here, from torch.__config__."""
    cfg = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", cfg)
    parts = [f"BLAS {blas.group(1) if blas else '?'}"]
    core = openblas_core()
    if core != "none":
        parts.append(f"OpenBLAS kernel {core}")
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", cfg)
    if mkl:
        parts.append(f"MKL {mkl.group(1)}")
    dnn = re.search(r"MKL-DNN (v[\w.]+)", cfg)
    if dnn and torch.backends.mkldnn.is_available():
        parts.append(f"oneDNN {dnn.group(1)}")
    cap = re.search(r"CPU capability usage: (\w+)", cfg)
    if cap:
        parts.append(cap.group(1))
    return ", ".join(parts)


def timed(fn, budget, min_reps, max_reps):
    fn()  # warm-up
    samples, spent = [], 0.0
    while len(samples) < max_reps and (len(samples) < min_reps or spent < budget):
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        samples.append(t)
        spent += t
        if t > budget and len(samples) >= 1:
            break
    return samples


def notes_cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(7 * 7 * 32, 10))


class BasicBlockA(nn.Module):
    """ResNet-20's block (He et al. 2015, 4.2) with a projection shortcut where shapes change."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


def resnet20():
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(BasicBlockA(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
                         nn.AvgPool2d(2), nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(), nn.Linear(120, 84),
                         nn.Tanh(), nn.Linear(84, 10))


def model_and_input(name, batch):
    """The model, one batch of input, the number of classes (0: the LSTM's regression)."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)), \
            torch.randn(batch, 1, 28, 28), 10
    if name == "cnn":
        return notes_cnn(), torch.randn(batch, 1, 28, 28), 10
    if name == "lenet5":
        return lenet5(), torch.randn(batch, 1, 28, 28), 10
    if name == "resnet20":
        return resnet20(), torch.randn(batch, 3, 32, 32), 10
    if name == "lstm":
        return nn.LSTM(64, 256), torch.randn(35, batch, 64), 0
    import torchvision
    if name == "vgg16":
        return torchvision.models.vgg16(), torch.randn(batch, 3, 224, 224), 1000
    if name == "resnet50":
        return torchvision.models.resnet50(), torch.randn(batch, 3, 224, 224), 1000
    raise KeyError(name)


def model_fn(w, dev):
    m, x, classes = model_and_input(w["model"], w["batch"])
    m, x = m.to(dev), x.to(dev)
    if not w["train"]:
        m.eval()

        def fwd():
            with torch.no_grad():
                m(x)
        return fwd
    m.train()
    y = (torch.arange(w["batch"]) % max(classes, 1)).to(dev)
    opt = torch.optim.Adam(m.parameters()) if w["model"] in ("cnn",) else \
        torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def step():
        out = m(x)
        if classes == 0:
            loss = out[0].square().mean()
        else:
            loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def op_fn(w, dev):
    kind = w["kind"]
    if kind == "gemm":
        a, b = torch.rand(w["n"], w["n"], device=dev), torch.rand(w["n"], w["n"], device=dev)
        return lambda: a @ b
    if kind == "ew":
        a, b = torch.randn(w["rows"], w["cols"], device=dev), torch.randn(w["rows"], w["cols"], device=dev)
        return {"add": lambda: a + b, "relu": lambda: torch.relu(a), "exp": lambda: torch.exp(a),
                "sum": lambda: a.sum(1), "softmax": lambda: torch.softmax(a, 1)}[w["op"]]
    if kind == "conv":
        x = torch.randn(w["batch"], w["cin"], w["hw"], w["hw"], device=dev)
        wt = torch.randn(w["cout"], w["cin"], w["k"], w["k"], device=dev) * 0.05

        def conv():
            with torch.no_grad():
                F.conv2d(x, wt, None, w["stride"], w["pad"])
        return conv
    return model_fn(w, dev)


def run_on(dev, target, spec, results):
    """Times every workload of the spec on dev, appending one result each to results."""
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    for w in spec["workloads"]:
        try:
            call = op_fn(w, dev)

            def fn():
                call()
                sync()
            s = sorted(timed(fn, spec["budget_s"], spec["min_reps"], spec["max_reps"]))
            results.append({"workload": w["name"], "target": target, "samples": len(s),
                            "median_s": statistics.median(s), "min_s": s[0], "max_s": s[-1]})
        except (KeyError, ImportError, RuntimeError) as e:
            results.append({"workload": w["name"], "target": target, "samples": 0, "note": f"skipped: {e}"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    spec = json.load(open(ap.parse_args().spec))
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    v2 = int(torch.__version__.split(".")[0]) >= 2
    target = "pytorch2-cpu" if v2 else "pytorch-cpu"
    results = []
    run_on("cpu", target, spec, results)
    note = f"torch {torch.__version__}, {torch.get_num_threads()} threads, {kernels()}"
    if v2 and torch.cuda.is_available():
        run_on("cuda", "pytorch2-cuda", spec, results)
        note += f"; CUDA on {torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()}"
    print(json.dumps({"target": target, "note": note, "results": results}))


if __name__ == "__main__":
    main()
