#!/usr/bin/env bash
# The side-by-side benchmark: the machine's limits (CPU model, FMA peak, bandwidth), then
# tapegrad's core and bandwidth benchmarks alternated with PyTorch's CPU build (same
# thread count) for a few rounds and a ratio table (medians with their range), then GEMM
# against OpenBLAS alternated inside one process.
#
# Every peer runs at its best: Debian's PyTorch and OpenBLAS with OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE removed from their environment (some machines set them, selecting a
# half-speed kernel) and the OpenBLAS kernel that is fastest here (bench_gemm
# --pick-openblas times each one); PyTorch with OPENBLAS_NUM_THREADS=1 beside its own
# threads. tapegrad's environment is left as it is. Each peer prints the kernel it ran.
# Usage: scripts/run-bench.sh [ROUNDS] (default 3). Results land in build/bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh python3-torch libopenblas-dev
rounds=${1:-3}
threads=${TG_NUM_THREADS:-$(nproc)}
out=build/bench-results
rm -rf "$out" && mkdir -p "$out"

echo "== the machine"
build/bench/bench_machine --threads "$threads" | tee "$out/machine.txt"

peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1)
if [ -x build/bench/bench_gemm ]; then
  echo "== choosing the OpenBLAS kernel for the peers"
  pick=$(build/bench/bench_gemm --pick-openblas)
  [ -n "$pick" ] && peer_env+=("OPENBLAS_CORETYPE=$pick")
  echo "PyTorch runs under: ${peer_env[*]}"
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
