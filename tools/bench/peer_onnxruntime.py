#!/usr/bin/env python3
"""tapegrad-bench's onnxruntime peer: the forward workloads of whole models in the JSON spec
tapegrad-bench writes ("kind": "model", "train": false, model "vgg16", "resnet50" or
"resnet20"), each PyTorch model (built as peer_torch.py builds it) exported to ONNX (opset
17, in a temporary directory) and timed as InferenceSession.run on the CPU provider with
intra_op threads = the benchmark's, inter_op 1, sequential execution and every graph
optimization on, thread spinning on or off, whichever runs the model faster (on a machine
with more runnable threads than cores, spinning loses); timed as peer_torch.py times (a
warm-up call, then samples within the budget, median/min/max). Prints {"target": "onnxruntime-cpu", "note", "results"} as JSON;
other workloads are left out. Run it with build/peers-venv/bin/python (torch 2.x,
torchvision, onnx, onnxruntime: scripts/setup-peers.sh).
Usage: peer_onnxruntime.py --spec FILE
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import onnxruntime as ort
import torch

MODELS = ("vgg16", "resnet50", "resnet20")


def load_peer_torch():
    """peer_torch.py beside this file (in the source tree) or its installed name."""
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("peer_torch.py", "tapegrad-bench-peer-torch.py"):
        path = os.path.join(here, name)
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("peer_torch", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    raise ImportError(f"no peer_torch.py beside {__file__}")


def export(model, x, path):
    """torch.onnx.export with the TorchScript exporter where this torch has it, else dynamo."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (x,), path, opset_version=17, input_names=["x"], output_names=["y"],
                              dynamo=False)
        except TypeError:  # a torch without the dynamo argument
            torch.onnx.export(model, (x,), path, opset_version=17, input_names=["x"], output_names=["y"])
        except Exception:  # the TorchScript exporter is gone: the dynamo one (needs onnxscript)
            torch.onnx.export(model, (x,), path, opset_version=17, input_names=["x"], output_names=["y"],
                              dynamo=True, external_data=True)


def session(path, threads, spin):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def faster_session(path, threads, feed):
    """The session (spinning or not) with the shorter of two timed calls after a warm-up each."""
    best = None
    for spin in (True, False):
        sess = session(path, threads, spin)
        sess.run(None, feed)
        t = min(timed_once(lambda: sess.run(None, feed)) for _ in range(2))
        if best is None or t < best[0]:
            best = (t, spin, sess)
    return best[2], best[1]


def timed_once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_one(pt, w, threads, spec, tmp):
    model, x, _ = pt.model_and_input(w["model"], w["batch"])
    model.eval()
    path = os.path.join(tmp, f"{w['model']}-b{w['batch']}.onnx")
    export(model, x, path)
    del model
    feed = {"x": x.numpy()}
    sess, spin = faster_session(path, threads, feed)
    s = sorted(pt.timed(lambda: sess.run(None, feed), spec["budget_s"], spec["min_reps"], spec["max_reps"]))
    return {"workload": w["name"], "samples": len(s), "median_s": statistics.median(s), "min_s": s[0],
            "max_s": s[-1], "note": f"intra-op spinning {'on' if spin else 'off'}"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    spec = json.load(open(ap.parse_args().spec))
    threads = spec["threads"]
    torch.set_num_threads(threads)  # for the export
    torch.manual_seed(0)
    pt = load_peer_torch()
    results = []
    with tempfile.TemporaryDirectory(prefix="tapegrad-bench-onnx.") as tmp:
        for w in spec["workloads"]:
            if w.get("kind") != "model" or w.get("train") or w.get("model") not in MODELS:
                continue
            try:
                results.append(time_one(pt, w, threads, spec, tmp))
            except Exception as e:  # noqa: BLE001 - the peer reports, never stops the benchmark
                results.append({"workload": w["name"], "samples": 0, "note": f"skipped: {type(e).__name__}: {e}"[:150]})
            print(f"peer_onnxruntime: {w['name']} done", file=sys.stderr)
    note = (f"onnxruntime {ort.__version__} CPUExecutionProvider (MLAS), {threads} intra-op threads, "
            f"ORT_ENABLE_ALL; exported by torch {torch.__version__}, opset 17")
    print(json.dumps({"target": "onnxruntime-cpu", "note": note, "results": results}))


if __name__ == "__main__":
    main()
