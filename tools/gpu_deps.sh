#!/usr/bin/env bash
# Prepare, on this (networked) machine, the Debian packages nantrace builds against, for a GPU
# machine that can reach no package registry:
#
#   tools/gpu_deps.sh            # downloads .deb files into .gpudeps/ (git-ignored), about 2 MB
#   tools/gpu_deps.sh --unpack   # (on the GPU machine, by gpu_check.sh) unpacks them into
#                                #  /tmp/nantrace-gpudeps and prints the CMake prefix to use
#
# The device tool's run then carries .gpudeps (docs/gpu.md gives the exact call). Packages are
# unpacked into a prefix of their own, never over /, so nothing on that machine is changed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$repo/.gpudeps"
prefix=${NANTRACE_GPUDEPS_PREFIX:-/tmp/nantrace-gpudeps}
# Headers (spdlog, fmt, nlohmann_json), libunwind with its shared object, GoogleTest. The
# shared-library packages are there because the -dev packages' CMake files name their files.
packages=(libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev libunwind-dev libunwind8
          libgtest-dev libgmock-dev)

if [[ ${1:-} == --unpack ]]; then
  shopt -s nullglob
  debs=("$dir"/*.deb)
  if ((${#debs[@]} == 0)); then
    echo "gpu_deps: no .deb files in $dir (run tools/gpu_deps.sh on a networked machine, carry .gpudeps)" >&2
    exit 1
  fi
  mkdir -p "$prefix"
  for deb in "${debs[@]}"; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$deb" "$prefix"
    else  # a .deb is an ar archive holding data.tar.*
      tmp=$(mktemp -d)
      (cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$prefix")
      rm -rf "$tmp"
    fi
  done
  echo "$prefix/usr"
  exit 0
fi

mkdir -p "$dir"
grep -qxF '/.gpudeps/' "$repo/.git/info/exclude" 2>/dev/null || echo '/.gpudeps/' >>"$repo/.git/info/exclude"
(cd "$dir" && apt-get download "${packages[@]}")
du -sh "$dir"
