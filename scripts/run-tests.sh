#!/usr/bin/env bash
# The whole test suite: set up and build, run every meson suite, then rebuild the unit
# suites under AddressSanitizer + UndefinedBehaviorSanitizer (leak checks on) and run
# them again, and the 'thread' suite (when it has tests) under ThreadSanitizer; and
# checks that an installed tapegrad builds a program through pkg-config (one more test).
# Ends with one line "N passed, N failed, N skipped" counting test programs; exits
# non-zero when a test failed, a meson run failed, or no test ran at all.
# Logs of each run: build/test-logs/<run>/ (two runs at once do not share a file).
# TG_SKIP_SANITIZE=1 skips both sanitizer builds.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0; failed=0; skipped=0
finish() {
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
  exit
}

if ! scripts/setup.sh; then
  echo "run-tests: setup or build failed (see above)"
  failed=1; finish
fi

run=$(date +%Y%m%d-%H%M%S)-$$
logs=build/test-logs/$run
mkdir -p "$logs"
echo "run-tests: logs in $logs"

# Relative paths (ninja targets) of the executables of a suite's tests in build dir $1.
suite_targets() {
  meson introspect "$1" --tests | python3 -c '
import json, os, sys
build, suite = os.path.realpath(sys.argv[1]), sys.argv[2]
seen = set()
for t in json.load(sys.stdin):
    if not any(s == suite or s.endswith(":" + suite) for s in t["suite"]):
        continue
    exe = os.path.realpath(t["cmd"][0])
    if exe.startswith(build + os.sep) and exe not in seen:
        seen.add(exe)
        print(os.path.relpath(exe, build))
' "$1" "$2"
}

# Prints "PASSED FAILED SKIPPED" from a meson JSON test log (0 0 0 when it is missing).
count_json() {
  python3 -c '
import json, sys
p = f = s = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1    # FAIL, TIMEOUT, UNEXPECTEDPASS, ERROR, ...
print(p, f, s)
' "$1"
}

# stage NAME BUILDDIR [meson test args...]: runs meson test, shows its output, adds its
# counts. A meson run that exits non-zero without a failed test, or that counts no
# test, is counted as one failure.
stage() {
  local name=$1 dir=$2; shift 2
  local base=testlog-$run-$name t0=$SECONDS rc p f s
  meson test -C "$dir" --logbase "$base" --print-errorlogs --num-processes 2 "$@" \
    >"$logs/$name.log" 2>&1
  rc=$?
  grep -vE '^\s*$|^Full log written to' "$logs/$name.log"
  # (meson appends the wrapper's name to the log's name: testlog-...-setarch.json)
  mv -f "$dir/meson-logs/$base"* "$logs/" 2>/dev/null
  read -r p f s < <(count_json "$logs/$base"*.json)
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "run-tests: meson test ($name) exited with status $rc and no failed test; counted as a failure"
    f=1
  elif [ $((p + f + s)) -eq 0 ]; then
    echo "run-tests: meson test ($name) ran no test; counted as a failure"
    f=1
  fi
  echo "run-tests: $name: $p passed, $f failed, $s skipped in $((SECONDS - t0)) s"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

# sanitizer_build DIR SUITE OPTION: configures DIR with -Db_sanitize=OPTION and builds
# only the executables of SUITE's tests (not benches, tools or examples).
sanitizer_build() {
  local dir=$1 suite=$2 san=$3 targets
  if [ ! -f "$dir/build.ninja" ]; then
    echo "run-tests: configuring $dir (-Db_sanitize=$san)"
    meson setup "$dir" --buildtype=debugoptimized -Db_sanitize="$san" -Db_lundef=false \
      >"$logs/$dir-setup.log" 2>&1 || { tail -n 30 "$logs/$dir-setup.log"; return 1; }
  fi
  mapfile -t targets < <(suite_targets "$dir" "$suite")
  [ ${#targets[@]} -gt 0 ] || { echo "run-tests: $dir: suite $suite has no test"; return 1; }
  echo "run-tests: building the $suite suite in $dir (${#targets[@]} programs; a minute or two on 2 cores)"
  ninja -C "$dir" "${targets[@]}" >"$logs/$dir-build.log" 2>&1 \
    || { grep -E 'error|FAILED' "$logs/$dir-build.log" | head -n 30; return 1; }
}

echo "== release build: all suites"
stage release build

echo "== install: meson install, tapegrad.pc, a program built against the installed library"
if scripts/check-install.sh build; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

if [ "${TG_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== sanitizer build (address, undefined, leak): unit suite"
  if sanitizer_build build-asan unit address,undefined; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      stage asan build-asan --no-rebuild --suite unit --timeout-multiplier 4
  else
    echo "run-tests: sanitizer build failed (log: $logs/build-asan-build.log)"; failed=$((failed + 1))
  fi

  # ThreadSanitizer only where the 'thread' suite has tests (the release build says).
  if [ -n "$(suite_targets build thread)" ]; then
    echo "== ThreadSanitizer build: thread suite"
    # gcc 12's TSan cannot map its shadow on kernels with many random mmap bits; without
    # address randomisation it always can, so run under setarch -R where that is allowed.
    wrap=()
    setarch "$(uname -m)" -R true 2>/dev/null && wrap=(--wrapper "setarch $(uname -m) -R")
    if sanitizer_build build-tsan thread thread; then
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        stage tsan build-tsan --no-rebuild --suite thread --timeout-multiplier 4 "${wrap[@]}"
    else
      echo "run-tests: ThreadSanitizer build failed (log: $logs/build-tsan-build.log)"; failed=$((failed + 1))
    fi
  else
    echo "== ThreadSanitizer: the 'thread' suite has no test yet; skipped"
  fi
fi

finish
