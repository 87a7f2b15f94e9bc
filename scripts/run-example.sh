#!/usr/bin/env bash
# The main job: set up, build, and train the notes' CNN on Fashion-MNIST (3 epochs, Adam,
# a cosine schedule, a prefetching loader), with a progress bar; plots, logs, a
# checkpoint and the weights land in build/cnn-run/. Options go to the example
# (--device opencl, --epochs N, --augment, --resume, ...; --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/examples/cnn_fashion_mnist --out build/cnn-run "$@"
