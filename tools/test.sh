#!/usr/bin/env bash
# The README's test command: install what is missing, build with the ci preset,
# run every test (unit tests, CLI tests, validation against the committed measurements).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)"
