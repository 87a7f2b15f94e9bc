#!/usr/bin/env bash
# The side-by-side benchmark: tapegrad's core, bandwidth and GEMM benchmarks alternated
# with PyTorch's CPU build (same thread count) for a few rounds, then a ratio table.
# Usage: scripts/run-bench.sh [ROUNDS] (default 3). Results land in build/bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh python3-torch libopenblas-dev
rounds=${1:-3}
threads=${TG_NUM_THREADS:-$(nproc)}
out=build/bench-results
rm -rf "$out" && mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  echo "== round $r of $rounds"
  build/bench/bench_core --json "$out/core-$r.json" >/dev/null
  /usr/bin/python3 bench/peer_torch.py --threads "$threads" --json "$out/torch-$r.json" >/dev/null
  build/bench/bench_bandwidth --json "$out/bandwidth-$r.json" >/dev/null
done
python3 bench/compare.py "$out"
if [ -x build/bench/bench_gemm ]; then
  echo "== GEMM against the system BLAS (OpenBLAS), alternated inside one process"
  build/bench/bench_gemm
fi
