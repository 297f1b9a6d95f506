#!/usr/bin/env bash
# Installs what rtnq needs to build (Debian packages) and builds the release preset.
#   scripts/setup.sh            packages + release build
#   scripts/setup.sh --venv     also the Python venv used only by reference checks (scripts/setup_venv.sh)
# Idempotent: installed packages and an up-to-date build are skipped quickly.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ clang libclang-rt-14-dev pkg-config
          nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libxxhash-dev
          libgtest-dev libgmock-dev libbenchmark-dev libcairo2-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--venv" ]; then
  scripts/setup_venv.sh
fi

echo "setup: building (preset release)"
cmake --preset release >/dev/null
cmake --build --preset release
