#!/usr/bin/env bash
# Starts a three-node Parley cluster on this machine, on loopback: one etcd
# (Debian's etcd-server) and three parleyd nodes, each with its own data
# directory and log file under ./data/cluster. Runs in the foreground;
# Ctrl-C (or `tools/cluster.sh stop` from another shell) stops every
# process it started, by PID: the nodes first, then etcd.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tools/cluster.sh [start] [-- PARLEYD_ARGS...]
       tools/cluster.sh stop
       tools/cluster.sh --help

start (the default) starts, all on 127.0.0.1:
  etcd     client port $ETCD_PORT (2379), peer port $ETCD_PEER_PORT (2380),
           data ./data/cluster/etcd, log ./data/cluster/etcd.log
  node N   (N = 1, 2, 3) client port 808N (HTTP and WebSocket), cluster
           port picked freely (--cluster.listen 127.0.0.1:0, registered in
           etcd), data ./data/cluster/nodeN, log ./data/cluster/nodeN.log
waits until every node reports its lease live and the two others as peers
(GET /healthz), prints where each listens, and stays in the foreground
until Ctrl-C, SIGTERM or `tools/cluster.sh stop`, then stops them all.
Arguments after -- go to every parleyd (e.g. --parley.password-hash=min).
The data stays in ./data/cluster: starting again resumes the same cluster.

stop: stops the cluster started from this directory (the PIDs it recorded
in ./data/cluster/pids), nodes first, then etcd.

Environment:
  PARLEYD          parleyd binary (default ./build/tools/parleyd)
  ETCD             etcd binary (default etcd on PATH, Debian: /usr/bin/etcd)
  ETCD_PORT        etcd client port (default 2379)
  ETCD_PEER_PORT   etcd peer port (default 2380)
  PARTITIONS       partitions of the deployment (default 64; fixed at the
                   first start on the data)
  CLUSTER_NAME     etcd key prefix /parley/NAME/ (default parley)
  ADMIN_TOKEN      if set, node N opens its admin port on 127.0.0.1:809N for
                   this token: PARLEYCTL_TOKEN="$ADMIN_TOKEN" parleyctl
                   --node 127.0.0.1:809N status | partitions |
                   partition move P N | node drain N (the token in the
                   environment, not on a command line others can read)

To run nodes on several machines instead: one etcd (or an etcd cluster)
all nodes reach, and on each machine
  parleyd --data DIR --listen ADDR:PORT --partitions K \
    --cluster.etcd=http://ETCD_HOST:2379 --cluster.node=N \
    --cluster.listen=PRIVATE_ADDR:PORT --cluster.initial-nodes=1,2,3
with the same K and initial nodes everywhere and a node id of its own.
EOF
}

cd "$(dirname "$0")/.."
root=./data/cluster
pids="$root/pids"
parleyd=${PARLEYD:-./build/tools/parleyd}
etcd_bin=${ETCD:-$(command -v etcd || echo /usr/bin/etcd)}
etcd_port=${ETCD_PORT:-2379}
etcd_peer_port=${ETCD_PEER_PORT:-2380}
partitions=${PARTITIONS:-64}
name=${CLUSTER_NAME:-parley}
nodes=(1 2 3)

# Sends SIGTERM to one recorded PID (if it still runs) and waits up to
# 20 s for it to exit, then SIGKILL.
stop_pid() {
  local pid=$1 what=$2
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || { echo "stopped $what (pid $pid)"; return 0; }
    sleep 0.1
  done
  echo "$what (pid $pid) did not exit in 20 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# Stops what the pid file names: nodes first, then etcd.
stop_recorded() {
  [[ -f $pids ]] || return 0
  local what pid
  while read -r what pid; do
    [[ $what == node* ]] && stop_pid "$pid" "$what"
  done <"$pids"
  while read -r what pid; do
    [[ $what == etcd ]] && stop_pid "$pid" "$what"
  done <"$pids"
  rm -f "$pids"
}

case "${1:-start}" in
  -h|--help|help) usage; exit 0 ;;
  stop)
    if [[ ! -f $pids ]]; then
      echo "no cluster recorded in $pids" >&2
      exit 1
    fi
    # The foreground script stops its cluster itself; if it is gone,
    # stop what it recorded.
    sup=$(awk '$1 == "supervisor" { print $2 }' "$pids")
    if [[ -n $sup ]] && kill -0 "$sup" 2>/dev/null; then
      kill -TERM "$sup"
      for _ in $(seq 600); do
        kill -0 "$sup" 2>/dev/null || exit 0
        sleep 0.1
      done
      echo "tools/cluster.sh (pid $sup) still runs after 60 s" >&2
      exit 1
    fi
    stop_recorded
    exit 0 ;;
  start) shift || true ;;
  --) ;;
  *) echo "unknown command: $1 (see --help)" >&2; exit 2 ;;
esac
[[ ${1:-} == -- ]] && shift
extra=("$@")

[[ -x $parleyd ]] || { echo "no parleyd at $parleyd (build it: tools/build.sh, or set PARLEYD=)" >&2; exit 1; }
[[ -x $etcd_bin ]] || { echo "no etcd at $etcd_bin (apt-get install etcd-server, or set ETCD=)" >&2; exit 1; }
if [[ -f $pids ]]; then
  while read -r what pid; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "a cluster from $pids still runs ($what pid $pid): tools/cluster.sh stop" >&2
      exit 1
    fi
  done <"$pids"
  rm -f "$pids"
fi
mkdir -p "$root"

on_exit() {
  trap - INT TERM EXIT
  set +m # no job notices while stopping
  echo
  echo "stopping the cluster"
  stop_recorded
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "supervisor $$" >>"$pids"
# Each child in a process group of its own (job control): a Ctrl-C reaches
# this script only, which stops the nodes before etcd.
set -m
etcd_url="http://127.0.0.1:$etcd_port"
"$etcd_bin" --name parley-etcd --data-dir "$root/etcd" \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "parley-etcd=http://127.0.0.1:$etcd_peer_port" \
  >>"$root/etcd.log" 2>&1 &
echo "etcd $!" >>"$pids"
for _ in $(seq 200); do
  curl -fsS "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' && break
  sleep 0.1
done
curl -fsS "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' \
  || { echo "etcd did not become healthy; see $root/etcd.log" >&2; exit 1; }

initial=$(IFS=,; echo "${nodes[*]}")
admin_hash=""
[[ -n ${ADMIN_TOKEN:-} ]] && admin_hash=$(printf %s "$ADMIN_TOKEN" | b2sum -l 256 | cut -d' ' -f1)
for n in "${nodes[@]}"; do
  # Each node its own admin port (open once it has a token: ADMIN_TOKEN,
  # or one added with parleyd --data DIR --admin-token-add NAME).
  admin=(--parley.admin-listen="127.0.0.1:809$n")
  [[ -n $admin_hash ]] && admin+=(--parley.admin-token-hash="$admin_hash")
  "$parleyd" --data "$root/node$n" --listen "127.0.0.1:808$n" \
    --partitions "$partitions" --cluster.etcd="$etcd_url" \
    --cluster.name="$name" --cluster.node="$n" \
    --cluster.listen=127.0.0.1:0 --cluster.initial-nodes="$initial" \
    "${admin[@]}" "${extra[@]}" >>"$root/node$n.log" 2>&1 &
  echo "node$n $!" >>"$pids"
done

# Ready: every node's lease live and the others among its peers.
ready() {
  local n body other peers
  for n in "${nodes[@]}"; do
    body=$(curl -fsS --max-time 2 "http://127.0.0.1:808$n/healthz" 2>/dev/null) || return 1
    [[ $body == *'"lease":"live"'* ]] || return 1
    [[ $body =~ \"peers\":\[([0-9,]*)\] ]] || return 1
    peers=",${BASH_REMATCH[1]},"
    for other in "${nodes[@]}"; do
      [[ $other == "$n" ]] && continue
      [[ $peers == *",$other,"* ]] || return 1
    done
  done
}
for _ in $(seq 600); do
  ready && break
  while read -r what pid; do
    [[ $what == supervisor ]] && continue
    kill -0 "$pid" 2>/dev/null || { echo "$what exited; see $root/$what.log" >&2; exit 1; }
  done <"$pids"
  sleep 0.1
done
ready || { echo "the cluster did not form in 60 s; see $root/node*.log" >&2; exit 1; }

echo "etcd    $etcd_url  (data $root/etcd, log $root/etcd.log)"
for n in "${nodes[@]}"; do
  body=$(curl -fsS "http://127.0.0.1:808$n/healthz")
  echo "node $n  http://127.0.0.1:808$n  ws://127.0.0.1:808$n/v1/ws  (data $root/node$n, log $root/node$n.log)"
  [[ -n $admin_hash ]] && echo "        admin: PARLEYCTL_TOKEN=\"\$ADMIN_TOKEN\" ./build/tools/parleyctl --node 127.0.0.1:809$n status"
  echo "        $body"
done
echo "running; Ctrl-C or tools/cluster.sh stop stops it"

# Until a signal, or until one of the processes exits.
while :; do
  while read -r what pid; do
    [[ $what == supervisor ]] && continue
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what (pid $pid) exited; stopping the rest"
      exit 1
    fi
  done <"$pids"
  sleep 1
done
