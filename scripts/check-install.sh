#!/usr/bin/env bash
# Checks the README's "use it from your own project" instructions: installs ./build into
# a scratch prefix (meson install --destdir), then compiles, links and runs a small
# program against it through pkg-config (tapegrad.pc), once with an rpath and once with
# LD_LIBRARY_PATH. Prints "check-install: ok" or what failed; exits non-zero on failure.
# Usage: scripts/check-install.sh [BUILD_DIR] (default build; it must be built already)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "check-install: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$work/root" --no-rebuild >"$work/install.log" 2>&1 \
  || { tail -n 20 "$work/install.log" >&2; fail "meson install failed"; }
pc=$(find "$work/root" -name tapegrad.pc | head -n 1)
[ -n "$pc" ] || fail "no tapegrad.pc was installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
# The .pc says prefix=/usr/local (the build's prefix); under destdir it is elsewhere.
prefix=$(pkg-config --variable=prefix tapegrad) || fail "pkg-config cannot read $pc"
pc_args=(--define-variable=prefix="$work/root$prefix")
pkg-config "${pc_args[@]}" --exists tapegrad || fail "pkg-config cannot use $pc: $(pkg-config --print-errors --exists tapegrad 2>&1)"
libdir=$(pkg-config "${pc_args[@]}" --variable=libdir tapegrad)

cat >"$work/hello.c" <<'C'
#include <stdio.h>
#include <tapegrad.h>

/* d/dx sum(x*x) = 2x, checked on every element. */
int main(void) {
    tg_device *dev = tg_device_get(NULL);
    tg_tensor *x = tg_param(tg_from_data((const double[]){ 1, -2, 3 }, TG_F64, TG_SHAPE(3), dev));
    tg_tensor *loss = tg_sum(tg_mul(x, x), TG_ALL, false);
    if (!loss || tg_backward(loss) != TG_OK) {
        fprintf(stderr, "%s\n", tg_last_error());
        return 1;
    }
    double g[3];
    if (tg_copy_to_host(tg_grad(x), g, sizeof g) != TG_OK) return 1;
    if (g[0] != 2 || g[1] != -4 || g[2] != 6) return 1;
    printf("loss %g\n", tg_item(loss));
    return 0;
}
C
cc -std=c11 -o "$work/hello" "$work/hello.c" $(pkg-config "${pc_args[@]}" --cflags --libs tapegrad) \
  -Wl,-rpath,"$libdir" 2>"$work/cc.log" || { cat "$work/cc.log" >&2; fail "compiling against the installed headers failed"; }
[ "$("$work/hello")" = "loss 14" ] || fail "the program linked with an rpath gave a wrong result"
cc -std=c11 -o "$work/hello2" "$work/hello.c" $(pkg-config "${pc_args[@]}" --cflags --libs tapegrad) \
  || fail "linking without an rpath failed"
[ "$(LD_LIBRARY_PATH="$libdir" "$work/hello2")" = "loss 14" ] || fail "the program run with LD_LIBRARY_PATH gave a wrong result"
echo "check-install: ok (headers, tapegrad.pc, libtapegrad.so; rpath and LD_LIBRARY_PATH)"
