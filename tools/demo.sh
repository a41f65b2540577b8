#!/usr/bin/env bash
# The main job: set up if needed, then train the bundled TinyVits demo (fp16 autocast +
# GradScaler on CPU) under nantrace, unchanged, and print the finding, trace and report paths.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/tools/setup.sh"
py=${NANTRACE_CACHE:-$HOME/.cache/nantrace}/venv/bin/python
export NANTRACE_LIB="${NANTRACE_BUILD_DIR:-$repo/build}/lib/libnantrace.so"
exec "$repo/tools/nantrace" run --lib "$NANTRACE_LIB" -- "$py" "$repo/tools/demo/train_tiny_vits.py" --config "$repo/tools/demo/configs/s2.json" "$@"
