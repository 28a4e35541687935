#!/bin/sh
# Holds Parley's layers to their direction (docs: ../../README.md, "Layout").
#   runtime/core     includes nothing of Parley's but itself
#   runtime/store,
#   runtime/accounts include runtime/core, each other and schema only
#   runtime/cluster  includes runtime/core and itself only
#   actors/          never include runtime/gateway/ or the node bootstrap
# and no request outside tests waits with caf::infinite.
# Run from anywhere: sh tests/unit/layering_check.sh SOURCE_DIR
# Exits non-zero and names every offending line.
set -u
root=${1:-$(dirname "$0")/../..}
cd "$root" || exit 2
fail=0

# $1: folders to scan; $2: extended regex of includes they may use.
allow_only() {
  dirs=$1 allowed=$2
  bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' $dirs |
    grep -vE "#[[:space:]]*include[[:space:]]*\"($allowed)")
  if [ -n "$bad" ]; then
    printf 'layering: %s may include only %s; found:\n%s\n' "$dirs" \
      "$allowed" "$bad"
    fail=1
  fi
}

allow_only runtime/core 'runtime/core/'
allow_only 'runtime/store runtime/accounts' \
  'runtime/core/|runtime/store/|runtime/accounts/|parley/v1/'
# The control-plane client: no actors, no gateway (sims replace it).
allow_only runtime/cluster 'runtime/core/|runtime/cluster/'

bad=$(grep -rnE '#[[:space:]]*include[[:space:]]*"runtime/(gateway/|node|config|scheduler|heap)' actors)
if [ -n "$bad" ]; then
  printf 'layering: actors/ includes the gateway or the bootstrap:\n%s\n' "$bad"
  fail=1
fi

# Every request that may cross a node has a timeout (runtime/core/timeouts.hpp):
# no caf::infinite outside tests (comments aside).
bad=$(grep -rnE 'caf::infinite' actors runtime tools --include='*.cpp' \
        --include='*.hpp' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//')
if [ -n "$bad" ]; then
  printf 'timeouts: a request waits with caf::infinite:\n%s\n' "$bad"
  fail=1
fi

[ $fail -eq 0 ] && echo "layering: ok"
exit $fail
