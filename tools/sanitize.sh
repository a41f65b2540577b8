#!/usr/bin/env bash
# The core, output and runtime-file unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
# and under ThreadSanitizer (issue 5 item 8). Exits non-zero on any failing test or any
# sanitizer report. CPU only (NANTRACE_WITH_CUDA=OFF).
#
#   tools/sanitize.sh [ASAN_BUILD_DIR [TSAN_BUILD_DIR]]
#
# Defaults: build/build-asan and build/build-tsan in the repository (git-ignored).
# NANTRACE_JOBS (default 2) sets the build parallelism; NANTRACE_SANITIZE_ONLY=asan|tsan runs
# one of the two.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
asan_dir=${1:-$repo/build/build-asan}
tsan_dir=${2:-$repo/build/build-tsan}
jobs=${NANTRACE_JOBS:-2}
only=${NANTRACE_SANITIZE_ONLY:-}
targets=(core_tests output_tests runtime_tests)

# Every report makes the process exit non-zero at once; the logs are also searched for report
# headers, so a report from a child process (a gtest death test) cannot slip through.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
report_pattern='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer|ThreadSanitizer: reported'

build() {  # build DIR SANITIZERS
  local dir=$1 sanitizers=$2
  cmake -S "$repo" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNANTRACE_WITH_CUDA=OFF \
    -DNANTRACE_BUILD_TESTS=ON -DNANTRACE_SANITIZE="$sanitizers" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  # Targets this tree has (runtime_tests only once tests/unit/runtime exists). The help text
  # is captured first: `grep -q` on a pipe would end cmake with SIGPIPE under pipefail.
  local help present=()
  help=$(cmake --build "$dir" --target help 2>/dev/null)
  for t in "${targets[@]}"; do
    if grep -qx "\.\.\. $t" <<<"$help"; then present+=("$t"); fi
  done
  cmake --build "$dir" --target "${present[@]}" -j"$jobs" >"$dir.build.log" 2>&1 ||
    { tail -50 "$dir.build.log"; return 1; }
}

run_tests() {  # run_tests DIR LABEL [WRAPPER...]
  local dir=$1 label=$2 status=0
  shift 2
  for t in "${targets[@]}"; do
    local bin=$dir/bin/$t
    [[ -x $bin ]] || continue
    local log=$dir/$t.log start=$SECONDS
    if "$@" "$bin" --gtest_brief=1 >"$log" 2>&1; then :; else status=1; fi
    if grep -Eq "$report_pattern" "$log"; then status=1; fi
    local summary
    summary=$(grep -E '^\[  (PASSED|FAILED) |tests? ran|SKIPPED \]' "$log" | tr '\n' ' ')
    echo "nantrace sanitize: $label $t: ${summary:-no gtest summary} ($((SECONDS - start)) s)"
    if [[ $status -ne 0 ]]; then
      echo "nantrace sanitize: $label $t FAILED; log $log:" >&2
      grep -E -A30 "$report_pattern|^\[  FAILED" "$log" | head -120 >&2 || tail -60 "$log" >&2
      return 1
    fi
  done
}

# GCC's TSan runtime cannot map its shadow memory with the high mmap randomisation of recent
# kernels ("unexpected memory mapping"); running without ASLR avoids it.
tsan_wrapper=()
if command -v setarch >/dev/null && setarch "$(uname -m)" -R true 2>/dev/null; then
  tsan_wrapper=(setarch "$(uname -m)" -R)
fi

start=$SECONDS
if [[ $only != tsan ]]; then
  mkdir -p "$asan_dir"
  build "$asan_dir" address,undefined
  run_tests "$asan_dir" "ASan+UBSan"
fi
if [[ $only != asan ]]; then
  mkdir -p "$tsan_dir"
  build "$tsan_dir" thread
  run_tests "$tsan_dir" "TSan" "${tsan_wrapper[@]}"
fi
echo "nantrace sanitize: no sanitizer reports ($((SECONDS - start)) s)"
