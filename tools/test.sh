#!/usr/bin/env bash
# Every test: set up if needed, then ctest (unit tests, integration tests that train real
# PyTorch models under LD_PRELOAD, the scenario corpus). Extra arguments go to ctest.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/tools/setup.sh"
build=${NANTRACE_BUILD_DIR:-$repo/build}
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "$@"
