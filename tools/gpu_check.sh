#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU (finishes within about 5 minutes):
#   tools/gpu_check.sh [BUILD_DIR]
# builds nantrace (Release), runs the CUDA unit tests, checks libnantrace.so links no CUDA
# library, measures the scan kernel against a device-to-device copy, runs the demo on CUDA
# under nantrace and checks that the report names the module, the op and a kernel, and
# measures the training-step overhead. Prints everything (also to BUILD_DIR/gpu_check.log);
# exits non-zero when any step fails or misses its target.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-/tmp/nantrace-gpu-build}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /root/.cache/nantrace/venv/bin/python ]]; then PYTHON=/root/.cache/nantrace/venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$BUILD"
LOG="$BUILD/gpu_check.log"
exec > >(tee "$LOG") 2>&1

failures=()
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
fail() { echo "FAILED: $*"; failures+=("$*"); }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || fail "nvidia-smi"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' || fail "torch import"

step "configure + build (Release, -j16)"
if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD/configure.log" 2>&1; then
  grep -E "nantrace:" "$BUILD/configure.log"
  timeout 240 cmake --build "$BUILD" -j16 2>&1 | tail -5 || fail "build"
else
  cat "$BUILD/configure.log"; fail "configure"
fi

step "CUDA unit tests"
timeout 120 ctest --test-dir "$BUILD" -R '^cuda\.' --output-on-failure 2>&1 | tail -15 || fail "CUDA unit tests"

step "libnantrace.so links no CUDA library"
LIB="$(find "$BUILD" -name libnantrace.so -print -quit)"
if [[ -n "$LIB" ]]; then
  ldd "$LIB"
  if ldd "$LIB" | grep -Ei 'libcuda|libcupti|libnvrtc|libcudart'; then fail "ldd shows a CUDA library"; fi
else
  fail "libnantrace.so not built"
fi

step "scan kernel vs device-to-device copy (target ratio >= 0.8)"
timeout 120 "$BUILD/bin/nantrace_bench_scan_gpu" 256 20
rc=$?
[[ $rc -eq 0 ]] || fail "scan benchmark (exit $rc: 2 = below target, 1 = error or wrong result)"

step "demo on CUDA under nantrace (fp16 autocast, planted fault)"
marker="$BUILD/.demo_start"; touch "$marker"
( cd "$ROOT" && timeout 180 "$ROOT/tools/nantrace" run -- "$PYTHON" tools/demo/train_tiny_vits.py --device cuda ) 2>&1 | tail -40
report="$(find "$ROOT" "$BUILD" /tmp -maxdepth 5 -name report.json -newer "$marker" 2>/dev/null | head -1)"
if [[ -z "$report" ]]; then
  fail "no report.json written by the demo run"
else
  echo "report: $report"
  "$PYTHON" - "$report" <<'PY' || fail "report does not name module, op and kernel"
import json, sys
r = json.load(open(sys.argv[1]))
f = r.get("finding", r)
origin = f.get("origin", {}) or {}
site = origin.get("site", origin)
def first(*vals):
    for v in vals:
        if v:
            return v
    return None
module = first(f.get("module_path"), f.get("module"), site.get("module_path"), site.get("module"))
op = first(f.get("op"), site.get("op"))
kernels = first(f.get("kernels"), origin.get("kernels"))
print("finding: kind=%s step=%s phase=%s" % (f.get("kind"), first(f.get("step"), origin.get("step")), first(f.get("phase"), site.get("phase"))))
print("  module:", module)
print("  op:", op)
print("  kernels:", kernels)
sys.exit(0 if module and op and kernels else 1)
PY
fi

step "training-step overhead on CUDA (target <= 1.05 at module level)"
( cd "$ROOT" && timeout 180 "$PYTHON" tools/bench_overhead.py --device cuda ) 2>&1 | tail -20 || fail "overhead benchmark"

echo
if [[ ${#failures[@]} -eq 0 ]]; then
  echo "gpu_check: ALL PASSED (log: $LOG)"
  exit 0
fi
echo "gpu_check: ${#failures[@]} FAILED:"
printf '  - %s\n' "${failures[@]}"
echo "(log: $LOG)"
exit 1
