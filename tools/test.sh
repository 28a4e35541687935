#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite
# (ctest labels: unit, sim, e2e). Extra arguments go to ctest, e.g. -L sim.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
ctest --test-dir build --output-on-failure -j 2 "$@"
