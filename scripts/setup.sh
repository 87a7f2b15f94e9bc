#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks (as root), then configures and builds
# tapegrad into ./build. Safe to run again: it installs and reconfigures only as needed.
# Usage: scripts/setup.sh [extra Debian packages...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc meson ninja-build pkg-config zlib1g-dev dataset-fashion-mnist
          pocl-opencl-icd ocl-icd-opencl-dev opencl-headers libclblast-dev clinfo libopenblas-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "setup: run as root to install packages" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

werror=false
[ "${CI:-}" = true ] && werror=true
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release -Dwerror=$werror >/dev/null
fi
ninja -C build >/dev/null
echo "setup: built ./build"
