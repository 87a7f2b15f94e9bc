#!/usr/bin/env bash
# The side-by-side benchmark: the machine's limits (CPU model, FMA peak, bandwidth); then
# tapegrad-bench's full suite on the CPU and every OpenCL device with every peer found
# (the system BLAS, CLBlast, Debian's PyTorch 1.x, and from build/peers-venv PyTorch 2.x and
# onnxruntime) into build/bench-results/tapegrad-bench.{txt,json,svg}; then tapegrad's core
# and bandwidth benchmarks alternated with PyTorch's CPU build for a few rounds and a ratio
# table, GEMM against OpenBLAS alternated inside one process, and the Adam step and LSTM
# benchmarks beside each PyTorch found (rounds alternated, medians with their range).
#
# Every peer runs at its best: Debian's PyTorch and OpenBLAS with OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE removed from their environment (some machines set them, selecting a
# half-speed kernel) and the OpenBLAS kernel that is fastest here (bench_gemm
# --pick-openblas times each one); PyTorch with OPENBLAS_NUM_THREADS=1 beside its own
# threads, and OMP_WAIT_POLICY=passive where that is faster (on a machine with more
# runnable threads than cores, spinning OpenMP threads lose several times over).
# tapegrad's environment is left as it is. Each peer prints the kernel it ran.
# build/peers-venv comes from scripts/setup-peers.sh (never run here: a ~5.5 GB download).
# Usage: scripts/run-bench.sh [ROUNDS] (default 3). Results land in build/bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh python3-torch python3-torchvision libopenblas-dev
rounds=${1:-3}
threads=${TG_NUM_THREADS:-$(nproc)}
out=build/bench-results
rm -rf "$out" && mkdir -p "$out"

venv=build/peers-venv/bin/python
pythons=(/usr/bin/python3)
if [ -x "$venv" ] && "$venv" -c 'import torch, sys; sys.exit(int(torch.__version__.split(".")[0]) < 2)' 2>/dev/null; then
  echo "== peers: Debian's PyTorch and, from build/peers-venv, $("$venv" -c 'import torch; print("torch", torch.__version__)')" \
       "$("$venv" -c 'import onnxruntime as o; print("and onnxruntime", o.__version__)' 2>/dev/null || echo "(no onnxruntime)")"
  pythons+=("$venv")
  venv_arg=()
else
  echo "== peers: Debian's PyTorch only; no build/peers-venv with torch 2.x (scripts/setup-peers.sh installs" \
       "PyTorch 2.x and onnxruntime there), so those peers are skipped"
  venv_arg=(--peer-python none)
fi

echo "== the machine"
build/bench/bench_machine --threads "$threads" | tee "$out/machine.txt"

peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1)
pick=
if [ -x build/bench/bench_gemm ]; then
  echo "== choosing the OpenBLAS kernel for the peers"
  pick=$(build/bench/bench_gemm --pick-openblas)
  [ -n "$pick" ] && peer_env+=("OPENBLAS_CORETYPE=$pick")
  echo "Debian's PyTorch runs under: ${peer_env[*]}"
fi

echo "== tapegrad-bench, the full suite with every peer found ($threads threads)"
t0=$SECONDS
build/tools/tapegrad-bench --threads "$threads" ${pick:+--peer-coretype "$pick"} "${venv_arg[@]}" \
  --json "$out/tapegrad-bench.json" --svg "$out/tapegrad-bench.svg" \
  >"$out/tapegrad-bench.txt" 2> >(tee "$out/tapegrad-bench.log" >&2)
wait $! 2>/dev/null || true # the log's tee
cat "$out/tapegrad-bench.txt"
echo "tapegrad-bench took $((SECONDS - t0)) s"
# Debian's PyTorch below at the OpenMP wait policy tapegrad-bench found faster for it.
if grep -q "PyTorch (/usr/bin/python3): .*runs with OMP_WAIT_POLICY=passive" "$out/tapegrad-bench.log"; then
  peer_env+=(OMP_WAIT_POLICY=passive)
  echo "Debian's PyTorch runs under: ${peer_env[*]}"
fi

for r in $(seq 1 "$rounds"); do
  echo "== round $r of $rounds: bench_core, PyTorch, bench_bandwidth"
  build/bench/bench_core --json "$out/core-$r.json" >"$out/core-$r.txt"
  "${peer_env[@]}" /usr/bin/python3 bench/peer_torch.py --threads "$threads" --json "$out/torch-$r.json" >/dev/null
  build/bench/bench_bandwidth --json "$out/bandwidth-$r.json" >"$out/bandwidth-$r.txt"
done
python3 bench/compare.py "$out" | tee "$out/compare.txt"
if [ -x build/bench/bench_gemm ]; then
  echo "== GEMM against the system BLAS (OpenBLAS at its fastest kernel), alternated inside one process"
  build/bench/bench_gemm | tee "$out/gemm.txt"
fi

# The nn/optim issue's targets, beside each PyTorch (the venv's is torch 2.x: foreach Adam, MKL).
for py in "${pythons[@]}"; do
  tag=debian
  [ "$py" = "$venv" ] && tag=venv
  echo "== Adam over ResNet-20's parameter shapes, PyTorch under $py"
  build/bench/bench_optim --rounds 5 --peer-python "$py" | tee "$out/optim-$tag.txt"
  echo "== LSTM input 64, hidden 256, 35 steps, batch 32, PyTorch under $py"
  build/bench/bench_rnn --rounds "$((rounds < 3 ? 3 : rounds))" --threads "$threads" --peer-python "$py" \
    ${pick:+--peer-coretype "$pick"} | tee "$out/rnn-$tag.txt"
done
