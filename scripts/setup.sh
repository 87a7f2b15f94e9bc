#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks (as root), then configures and builds
# tapegrad into ./build. Safe to run again: it installs and reconfigures only as needed.
# Says what it is doing at each step; full logs in build/setup-*.log.
# Usage: scripts/setup.sh [extra Debian packages...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc meson ninja-build pkg-config zlib1g-dev dataset-fashion-mnist
          pocl-opencl-icd ocl-icd-opencl-dev opencl-headers libclblast-dev clinfo libopenblas-dev
          libcjson-dev libspng-dev libopenmpi-dev openmpi-bin graphviz "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  echo "setup: (apt-get update + install; a few minutes on a fresh machine)"
  apt_log=$(mktemp /tmp/tapegrad-apt.XXXXXX)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
       >"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2
    echo "setup: apt-get failed (full log: $apt_log)" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

werror=false
[ "${CI:-}" = true ] && werror=true
if [ ! -f build/build.ninja ]; then
  echo "setup: configuring ./build (meson, release, werror=$werror)"
  mkdir -p build
  if ! meson setup build --buildtype=release -Dwerror=$werror >build/setup-configure.log 2>&1; then
    tail -n 30 build/setup-configure.log >&2
    echo "setup: meson setup failed (full log: build/setup-configure.log)" >&2
    exit 1
  fi
fi

# Building: one line at the start and one at each quarter, not one per file.
ninja -C build -n 2>/dev/null | grep -q 'no work to do' && { echo "setup: ./build is up to date"; exit 0; }
echo "setup: building ./build with ninja (about a minute on 2 cores)"
t0=$SECONDS
if ! NINJA_STATUS='[%f/%t] ' ninja -C build 2>&1 | tee build/setup-build.log | awk '
    match($0, /^\[[0-9]+\/[0-9]+\] /) {
      split(substr($0, 2, RLENGTH - 3), a, "/")
      q = int(4 * a[1] / a[2])
      if (q > last && q < 4) { printf "setup:   %d%% (%d of %d steps)\n", 25 * q, a[1], a[2]; fflush(); last = q }
    }'; then
  grep -vE '^\[[0-9]+/[0-9]+\] ' build/setup-build.log | head -n 40 >&2
  echo "setup: build failed (full log: build/setup-build.log)" >&2
  exit 1
fi
echo "setup: built ./build in $((SECONDS - t0)) s"
