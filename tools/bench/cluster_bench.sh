#!/usr/bin/env bash
# The cost of the cross-node hop (issue 22): parley-bench's 1:1 pairs
# against one parleyd and against a three-node cluster (etcd + 3 parleyd),
# alternating, in one sitting. In the cluster every pair has its sender,
# conversation and recipient on three different nodes (parley-bench
# --cluster-ports). Everything on loopback; each run gets fresh data under
# $OUT and stops what it started, by PID.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tools/bench/cluster_bench.sh [--rounds R] [--pairs N] [--duration-s S]
         [--window W] [--partitions K] [--only one|three] [--perf NODE]

Each round: one run against one node, one against three (the order flips
every round). Prints each run's parley-bench output, the load average, the
CPU of every parleyd thread over the middle of the measurement (and, with
three nodes, the bytes sent on the nodes' BASP connections), and at the end
one line per run: mode, delivered msg/s, p50/p99, server CPU per message.
  --rounds R       rounds (default 3, at most 10)
  --pairs N        sender/recipient pairs (default 100)
  --duration-s S   measured seconds per run (default 8)
  --window W       sends in flight per sender (default 16)
  --partitions K   partitions (default 64; the same for both)
  --only one|three runs of one kind only
  --perf NODE      three-node runs: perf record -g node NODE (1-3) for 4 s
                   of the measurement (perf.data under $OUT)
Environment: BIN (default ./build/tools: parleyd, parley-bench),
  ETCD (default etcd on PATH), OUT (default /tmp/parley-cluster-bench),
  BASE_PORT (default 18480: one node on BASE, nodes on BASE+1..3, etcd
  on BASE+10 and BASE+11).
EOF
}

rounds=3 pairs=100 duration=8 window=16 partitions=64 only="" perf_node=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --duration-s) duration=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --perf) perf_node=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
(( rounds >= 1 && rounds <= 10 )) || { echo "--rounds: 1-10" >&2; exit 2; }

cd "$(dirname "$0")/../.."
bin=${BIN:-./build/tools}
etcd_bin=${ETCD:-$(command -v etcd || echo /usr/bin/etcd)}
out=${OUT:-/tmp/parley-cluster-bench}
base=${BASE_PORT:-18480}
etcd_port=$((base + 10)) etcd_peer=$((base + 11))
mkdir -p "$out"
started=() # PIDs of this run, stopped in reverse order

stop_all() {
  local i pid
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    pid=${started[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  started=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

common=(--parley.password-hash=min --parley.no-rate-limits --log-level warn
        --parley.partitions="$partitions")

# Waits until GET /healthz on each port in "$@" answers (and, clustered,
# shows the lease live and two peers); 60 s at most.
wait_ready() {
  local clustered=$1; shift
  local port body ok
  for _ in $(seq 600); do
    ok=1
    for port in "$@"; do
      body=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null) || { ok=0; break; }
      if [[ $clustered == 1 ]]; then
        [[ $body == *'"lease":"live"'* && $body =~ \"peers\":\[[0-9]+,[0-9]+\] ]] || { ok=0; break; }
      fi
    done
    [[ $ok == 1 ]] && return 0
    sleep 0.1
  done
  echo "nodes on $* not ready in 60 s" >&2
  return 1
}

# CPU ticks of every thread of the given PIDs: "pid name ticks" lines.
thread_ticks() {
  local pid t
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      awk -v p="$pid" -v tid="${t##*/}" '{ s = $0; sub(/^[^)]*\) /, "", s);
        split(s, f, " "); n = $0; sub(/^[^(]*\(/, "", n); sub(/\).*$/, "", n);
        print p, n "/" tid, f[12] + f[13] }' "$t/stat" 2>/dev/null || true
    done
  done
}

# Bytes and segments sent on the nodes' BASP connections (both ends of
# each, from ss's TCP info): "bytes segments".
basp_filter=""
basp_counters() {
  ss -tinH state established "$basp_filter" 2>/dev/null |
    awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^bytes_sent:/) { split($i, x, ":"); b += x[2] }
           if ($i ~ /^segs_out:/) { split($i, x, ":"); s += x[2] } } }
         END { print b + 0, s + 0 }'
}

# Runs one measurement: $1 = one|three, $2 = run label.
run_once() {
  local kind=$1 label=$2 dir="$out/$2" pids=() ports=() n
  rm -rf "$dir"; mkdir -p "$dir"
  basp_filter=""
  if [[ $kind == one ]]; then
    "$bin/parleyd" --data "$dir/node" --listen "127.0.0.1:$base" "${common[@]}" \
      >"$dir/node.log" 2>&1 &
    started+=($!); pids+=($!); ports+=("$base")
    wait_ready 0 "${ports[@]}"
  else
    local url="http://127.0.0.1:$etcd_port"
    "$etcd_bin" --name fbench --data-dir "$dir/etcd" \
      --listen-client-urls "$url" --advertise-client-urls "$url" \
      --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
      --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
      --initial-cluster "fbench=http://127.0.0.1:$etcd_peer" \
      >"$dir/etcd.log" 2>&1 &
    started+=($!)
    for _ in $(seq 200); do
      curl -fsS "$url/health" 2>/dev/null | grep -q '"health":"true"' && break
      sleep 0.1
    done
    for n in 1 2 3; do
      "$bin/parleyd" --data "$dir/node$n" --listen "127.0.0.1:$((base + n))" \
        "${common[@]}" --cluster.etcd="$url" --cluster.name=fbench \
        --cluster.node=$n --cluster.listen=127.0.0.1:0 \
        --cluster.initial-nodes=1,2,3 >"$dir/node$n.log" 2>&1 &
      started+=($!); pids+=($!); ports+=("$((base + n))")
    done
    wait_ready 1 "${ports[@]}"
    local bp f=""
    for bp in $(ETCDCTL_API=3 etcdctl --endpoints "$url" get --prefix \
                  /parley/fbench/nodes/ --print-value-only | grep -oP '"port":\K[0-9]+'); do
      f+="${f:+ or }sport = :$bp or dport = :$bp"
    done
    basp_filter="( $f )"
  fi
  local pidlist portlist
  pidlist=$(IFS=,; echo "${pids[*]}") portlist=$(IFS=,; echo "${ports[*]}")
  local args=(--mode ws --pairs "$pairs" --window "$window"
              --duration-s "$duration" --server-pid "$pidlist")
  if [[ $kind == one ]]; then args+=(--port "$base" --pair-kind group); else args+=(--cluster-ports "$portlist"); fi
  echo "== run $label ($kind node(s)), $(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bin/parley-bench" "${args[@]}" >"$dir/bench.out" 2>&1 &
  local bench=$!
  # Per-thread CPU over the middle of the measured phase: from 1.5 s after
  # the clients are connected (1 s warm-up + 0.2 s settle) for S - 2 s.
  for _ in $(seq 1200); do
    grep -q '^pairs ' "$dir/bench.out" 2>/dev/null && break
    kill -0 "$bench" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1.5
  thread_ticks "${pids[@]}" >"$dir/threads0"
  local basp0_bytes=0 basp0_segs=0 basp1_bytes=0 basp1_segs=0
  [[ -n $basp_filter ]] && read -r basp0_bytes basp0_segs < <(basp_counters)
  if [[ $kind == three && -n $perf_node ]]; then
    perf record -g -F 499 -p "${pids[perf_node - 1]}" -o "$dir/perf.data" \
      -- sleep 4 >"$dir/perf.log" 2>&1 || true
    sleep $((duration - 6 > 0 ? duration - 6 : 0))
  else
    sleep $((duration - 2))
  fi
  thread_ticks "${pids[@]}" >"$dir/threads1"
  [[ -n $basp_filter ]] && read -r basp1_bytes basp1_segs < <(basp_counters)
  wait "$bench" || echo "parley-bench exited with $?" >&2
  cat "$dir/bench.out"
  echo "-- parleyd CPU per thread over the window (s; pid: name/tid=s, busiest first, 0 left out):"
  awk 'NR == FNR { a[$1" "$2] = $3; next }
       { d = ($3 - a[$1" "$2]) / 100; if (d > 0) print $1, d, $2 }' \
    "$dir/threads0" "$dir/threads1" | sort -k1,1n -k2,2gr |
    awk '{ t[$1] = t[$1] " " $3 "=" $2 } END { for (p in t) print p ":" t[p] }' | sort
  if [[ -n $basp_filter ]]; then
    echo "-- BASP over the window: $((basp1_bytes - basp0_bytes)) bytes in $((basp1_segs - basp0_segs)) TCP segments (both directions, all node pairs)"
  fi
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  local rate p50 p99 cpu
  rate=$(grep -oP 'delivered \K[0-9]+(?= msg/s)' "$dir/bench.out" | head -1)
  p50=$(grep -oP 'send->deliver latency: p50 \K[0-9]+' "$dir/bench.out" | head -1)
  p99=$(grep -oP 'send->deliver latency: p50 [0-9]+ us, p99 \K[0-9]+' "$dir/bench.out" | head -1)
  cpu=$(grep -oP 'server cpu per delivered message: \K[0-9.]+' "$dir/bench.out" | head -1)
  echo "$label $kind delivered=${rate:-?} p50_us=${p50:-?} p99_us=${p99:-?} cpu_us_per_msg=${cpu:-?} load=$(cut -d' ' -f1 /proc/loadavg)" \
    >>"$out/summary"
  stop_all
}

: >"$out/summary"
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order=(one three); else order=(three one); fi
  for kind in "${order[@]}"; do
    [[ -n $only && $kind != "$only" ]] && continue
    run_once "$kind" "r$r-$kind"
  done
done
echo "== summary ($(date +%T))"
cat "$out/summary"
