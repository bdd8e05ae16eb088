#!/usr/bin/env bash
# One-step setup for a fresh Debian 12 machine: install the build's Debian
# packages, then configure and build into ./build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ meson ninja-build pkg-config
  libarmadillo-dev libopenblas-dev liblapack-dev
  libboost-test-dev nlohmann-json3-dev
  time
  groff-base man-db bash-completion   # the man page test, the completion's install dir
  librsvg2-bin                        # tools/render-svg: look at the report's SVGs as PNG
  clang libclang-rt-14-dev llvm       # tools/sanitize-test, tools/fuzz.sh: ASan, UBSan, libFuzzer, symbolizer
  libopenmpi-dev openmpi-bin          # -Dmpi (auto): runs over MPI ranks, and mpirun for their tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# CI builds with warnings as errors; a user's newer compiler should not be
# stopped by a new warning. It builds without debug info: GCC's code is the
# same with and without -g, which took about 30% of each file's compile time
# (README "Tests").
options=("$@")
[ -n "${CI:-}" ] && options+=(-Dwerror=true -Ddebug=false)
if [ -d build ]; then
  meson setup --reconfigure build "${options[@]}"
else
  meson setup build "${options[@]}"
fi
meson compile -C build
