#!/usr/bin/env bash
# Installs what is missing, builds, and starts one Parley node in the
# foreground with its LevelDB under ./data (Ctrl-C stops it cleanly).
# Extra arguments go to parleyd (see ./build/tools/parleyd --help).
#
# On the first start it makes an admin token named "local" (stored hashed
# in ./data/admin-tokens) and, unless it exists, writes parleyctl's config
# ($PARLEYCTL_CONFIG or ~/.config/parley/parleyctl.conf, mode 0600) with it,
# so that `build/tools/parleyctl status` works right away.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
mkdir -p data
# A token line: anything but blanks and # comments.
if ! grep -qsEv '^[[:space:]]*(#|$)' data/admin-tokens; then
  token=$(./build/tools/parleyd --data ./data --admin-token-add local)
  conf=${PARLEYCTL_CONFIG:-$HOME/.config/parley/parleyctl.conf}
  if [ -e "$conf" ]; then
    echo "run.sh: admin token \"local\" made; $conf exists and was left" \
         "alone: put this token in it (shown once): $token" >&2
  else
    mkdir -p "$(dirname "$conf")"
    (umask 077 && printf 'node = 127.0.0.1:8090\ntoken = %s\n' "$token" \
       > "$conf")
    echo "run.sh: admin token \"local\" made and written to $conf" \
         "(build/tools/parleyctl uses it)" >&2
  fi
fi
exec ./build/tools/parleyd --data ./data "$@"
