#!/usr/bin/env bash
# The main job: set up, build, and train the Fashion-MNIST MLP for one epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/examples/mlp_fashion_mnist "$@"
