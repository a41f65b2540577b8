#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) and runs each one for a
# bounded time from its seed corpus in tests/fuzz/corpus/<target>/ (issue 5 item 8).
# Exits non-zero when a target crashes, leaks, trips a sanitizer or breaks a checked contract;
# the input that did it is saved as <build>/fuzz-artifacts/<target>-crash-... (re-run it with
# `<build>/bin/<target> <that file>`).
#
#   tools/fuzz.sh [SECONDS_PER_TARGET [BUILD_DIR]]     defaults: 20, build/build-fuzz
#
# NANTRACE_FUZZ_SEED, when set, fixes libFuzzer's random seed: CI sets it so that a run is
# repeatable (the same inputs are tried on every clean clone, a failure can be replayed);
# unset, each run explores afresh, which is what a long local run is for.
# NANTRACE_JOBS (default 2) sets the build parallelism. The committed seeds are never
# written to; what the fuzzer learns goes to <build>/fuzz-corpus/<target>/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-20}
build=${2:-$repo/build/build-fuzz}
jobs=${NANTRACE_JOBS:-2}
cxx=${NANTRACE_FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}
cc=${NANTRACE_FUZZ_CC:-$(command -v clang || command -v clang-14 || true)}
if [[ -z $cxx || -z $cc ]]; then
  echo "nantrace fuzz: clang/clang++ not found (apt-get install clang libclang-rt-dev)" >&2
  exit 1
fi

mkdir -p "$build"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_C_COMPILER="$cc" -DNANTRACE_FUZZ=ON -DNANTRACE_WITH_CUDA=OFF -DNANTRACE_BUILD_TESTS=OFF \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target nantrace_fuzz -j"$jobs" >"$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log"; exit 1; }

export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for seeds in "$repo"/tests/fuzz/corpus/*/; do
  target=$(basename "$seeds")
  bin=$build/bin/$target
  if [[ ! -x $bin ]]; then
    echo "nantrace fuzz: $target: seeds present but no target built" >&2
    status=1
    continue
  fi
  work=$build/fuzz-corpus/$target
  mkdir -p "$work" "$build/fuzz-artifacts"
  log=$build/$target.log
  # -timeout: one input taking over 10 s is a hang (a runaway regex, say) and counts as a crash.
  # -max_len: 16 KiB, so long argv strings and whole report.json files are tried.
  seed_flag=()
  [[ -n ${NANTRACE_FUZZ_SEED:-} ]] && seed_flag=(-seed="$NANTRACE_FUZZ_SEED")
  if "$bin" "$work" "$seeds" "${seed_flag[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$target-" >"$log" 2>&1; then
    echo "nantrace fuzz: $target: ok, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${seconds} s, corpus $(ls "$work" | wc -l) inputs"
  else
    status=1
    echo "nantrace fuzz: $target FAILED (log $log):" >&2
    grep -E -A40 '==ERROR|runtime error:|deadly signal|Test unit written|ALARM|out-of-memory' "$log" | head -80 >&2 || tail -40 "$log" >&2
  fi
done
exit $status
