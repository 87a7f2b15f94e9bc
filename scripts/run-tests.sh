#!/usr/bin/env bash
# The whole test suite: set up and build, run every meson suite, then rebuild the
# unit suites under AddressSanitizer + UndefinedBehaviorSanitizer (leak checks on) and
# run them again. Ends with one line "N passed, N failed" counting test programs.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1

passed=0; failed=0
count() { # adds the Ok/Fail counts of a meson test run's summary
  local log=$1
  local ok fail
  ok=$(grep -E '^Ok:' "$log" | awk '{print $2}' | tail -1)
  fail=$(grep -E '^(Fail|Timeout|Unexpected Pass):' "$log" | awk '{s+=$NF} END {print s+0}')
  passed=$((passed + ${ok:-0})); failed=$((failed + ${fail:-0}))
}

echo "== release build: all suites"
meson test -C build --print-errorlogs --num-processes 2 2>&1 | tee /tmp/tg-test-release.log | grep -vE '^\s*$' | tail -n 60
count /tmp/tg-test-release.log

if [ "${TG_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== sanitizer build (address, undefined, leak): unit suites"
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
  fi
  ninja -C build-asan >/dev/null || { echo "sanitizer build failed"; failed=$((failed + 1)); }
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --suite unit --print-errorlogs --num-processes 2 --timeout-multiplier 4 2>&1 \
    | tee /tmp/tg-test-asan.log | grep -vE '^\s*$' | tail -n 40
  count /tmp/tg-test-asan.log
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
