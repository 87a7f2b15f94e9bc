#!/usr/bin/env bash
# Installs the benchmark's optional peers into a virtual environment, build/peers-venv:
# PyTorch 2.x (PyPI's wheel, the CUDA build with its nvidia packages, ~5.5 GB; it computes
# on the CPU where there is no GPU), torchvision, onnxruntime, onnx and onnxscript (the
# exporter of torch versions without the TorchScript one). tapegrad-bench and
# scripts/run-bench.sh use it when it is there. Never run by CI or scripts/run-tests.sh.
# Idempotent: a venv that already imports all three is left as it is.
# Usage: scripts/setup-peers.sh        (log in build/setup-peers.log)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=build/peers-venv
py=$venv/bin/python
log=build/setup-peers.log
mkdir -p build

check='import torch, onnxruntime, onnx, onnxscript, torchvision
assert int(torch.__version__.split(".")[0]) >= 2, torch.__version__
print("torch", torch.__version__, "torchvision", torchvision.__version__,
      "onnxruntime", onnxruntime.__version__, "onnx", onnx.__version__)'

if [ -x "$py" ] && "$py" -c "$check" >/dev/null 2>&1; then
  echo "setup-peers: $venv is complete: $("$py" -c "$check")"
  exit 0
fi

if [ ! -x "$py" ]; then
  echo "setup-peers: creating $venv with /usr/bin/python3 -m venv"
  if ! /usr/bin/python3 -m venv "$venv" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-peers: python3 -m venv failed; on Debian install python3-venv (apt-get install python3-venv)" >&2
    exit 1
  fi
fi

start=$(date +%s)
echo "setup-peers: pip install torch torchvision onnxruntime onnx onnxscript from PyPI into $venv"
echo "setup-peers: (torch's wheel pulls its nvidia packages, ~5.5 GB: tens of minutes on a slow link; log: $log)"
if ! "$py" -m pip install --progress-bar off 'torch>=2' torchvision onnxruntime onnx onnxscript >>"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "setup-peers: pip install failed (full log: $log); is PyPI reachable, and is there ~12 GB free?" >&2
  exit 1
fi
if ! "$py" -c "$check" >>"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "setup-peers: the packages installed but do not import (full log: $log)" >&2
  exit 1
fi
echo "setup-peers: done in $(( $(date +%s) - start )) s: $("$py" -c "$check")"
