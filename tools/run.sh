#!/usr/bin/env bash
# Installs what is missing, builds, and starts one Parley node in the
# foreground with its LevelDB under ./data (Ctrl-C stops it cleanly).
# Extra arguments go to parleyd (see ./build/tools/parleyd --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
mkdir -p data
exec ./build/tools/parleyd --data ./data "$@"
