#!/usr/bin/env bash
# Installs what moesim needs to build and test on Debian 12, skipping what is
# already there. Needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(cmake g++ make libboost-graph-dev nlohmann-json3-dev libcli11-dev libfmt-dev libgtest-dev googletest
          libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all build dependencies are present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
