#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU (finishes within about 5 minutes):
#   tools/gpu_check.sh [BUILD_DIR]
# builds nantrace (Release), runs the CUDA unit tests, checks libnantrace.so links no CUDA
# library, measures the scan kernel against a device-to-device copy, runs the demo on CUDA
# under nantrace and checks that the report names the module, the op and a kernel and that
# the culprit was captured at the fault's recurrence and replayed (fix verified, repro saved),
# and measures the training-step overhead. Prints everything (also to BUILD_DIR/gpu_check.log,
# and to $OUT/gpu_check.log under the device tool); exits non-zero when any step fails or
# misses its target.
# A GPU machine that cannot install Debian packages builds against the ones tools/gpu_deps.sh
# downloaded into .gpudeps/ (carried there; docs/gpu.md has the device tool's call).
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-/tmp/nantrace-gpu-build}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /root/.cache/nantrace/venv/bin/python ]]; then PYTHON=/root/.cache/nantrace/venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$BUILD"
LOG="$BUILD/gpu_check.log"
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
  exec > >(tee "$LOG" "$OUT/gpu_check.log") 2>&1
else
  exec > >(tee "$LOG") 2>&1
fi

failures=()
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
fail() { echo "FAILED: $*"; failures+=("$*"); }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || fail "nvidia-smi"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' || fail "torch import"

step "configure + build (Release, -j16)"
cmake_extra=()
if compgen -G "$ROOT/.gpudeps/*.deb" >/dev/null; then
  prefix="$("$ROOT/tools/gpu_deps.sh" --unpack)" || fail "unpacking .gpudeps"
  echo "dependencies from .gpudeps, unpacked under $prefix"
  cmake_extra=(-DCMAKE_PREFIX_PATH="$prefix")
fi
if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DNANTRACE_PYTHON="$PYTHON" "${cmake_extra[@]}" \
     >"$BUILD/configure.log" 2>&1; then
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
runs="$BUILD/runs"; rm -rf "$runs"; mkdir -p "$runs"
( cd "$ROOT" && timeout 180 "$ROOT/tools/nantrace" run --lib "$LIB" --dir "$runs" -- \
    "$PYTHON" tools/demo/train_tiny_vits.py --device cuda --steps 30 ) 2>&1 | tail -40
report="$(find "$runs" -maxdepth 2 -name report.json 2>/dev/null | head -1)"
if [[ -z "$report" ]]; then
  fail "no report.json written by the demo run"
else
  echo "report: $report"
  [[ -n "${OUT:-}" && -d "${OUT:-}" ]] && cp "$report" "$OUT/demo_report.json" && cp "${report%.json}.md" "$OUT/demo_report.md"
  "$PYTHON" - "$report" <<'PY' || fail "report does not name module, op and kernel, or the recurrence was not captured"
import json, os, sys
r = json.load(open(sys.argv[1]))
f = r["finding"]
notes = r.get("notes", [])
print("finding: kind=%s step=%s phase=%s" % (f.get("kind"), f.get("step"), f.get("phase")))
print("  module:", f.get("module_path"))
print("  op:", f.get("op"))
print("  kernels:", f.get("kernels"))
print("  explanation:", f.get("explanation"))
print("  fix:", (f.get("recommendation") or {}).get("headline"))
for n in notes:
    print("  note:", n[:200])
repro = os.path.join(os.path.dirname(sys.argv[1]), "repro", "origin_module.pt")
# The two sites the demo's fault was seen at on CPUs (docs/demo.md); on a GPU it may be either.
sites = {"TinyVits/enc_q": "aten::exp", "TinyVits/dec.resblocks.1": "aten::add"}
checks = {
    "module named": f.get("module_path") in sites,
    "op named": f.get("op") is not None and f.get("op") == sites.get(f.get("module_path")),
    "kernel named": bool(f.get("kernels")),
    "captured at a recurrence": "recurred at step" in (f.get("explanation") or ""),
    "fix verified on the captured inputs": any(n.startswith("replay") for n in notes) and os.path.isfile(repro),
}
for k, v in checks.items():
    print("  %-40s %s" % (k, "yes" if v else "NO"))
sys.exit(0 if all(checks.values()) else 1)
PY
fi

step "training-step overhead on CUDA (target <= 1.05 at module level)"
( cd "$ROOT" && timeout 180 "$PYTHON" tools/bench_overhead.py --device cuda --mode processes --clock wall --lib "$LIB" --steps 40 --reps 3 ) 2>&1 | tail -20 || fail "overhead benchmark"

echo
if [[ ${#failures[@]} -eq 0 ]]; then
  echo "gpu_check: ALL PASSED (log: $LOG)"
  exit 0
fi
echo "gpu_check: ${#failures[@]} FAILED:"
printf '  - %s\n' "${failures[@]}"
echo "(log: $LOG)"
exit 1
