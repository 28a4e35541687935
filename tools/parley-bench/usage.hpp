#pragma once

// parley-bench's --help text.

namespace parley::bench {

inline constexpr const char* usage = R"(parley-bench - Parley load generator

Usage: parley-bench [--mode accept|ws|idle|group|sync] [options]

  --mode accept          in-process accept path with fsync (default)
  --mode ws              WebSocket pairs against a running parleyd (start it
                         with --parley.password-hash=min: the bench makes
                         2 accounts per pair)
  --conversations N      conversations (default 1000)
  --messages M           messages per conversation (default 100)
  --window W             sends in flight per conversation (default 8)
  --payload BYTES        payload size (default 200)
  --baseline-writes K    one-message synced writes for the baseline (2000)
  --time-limit-s S       give up after S seconds (default 120)
  --data DIR             database directory (default: a fresh temporary
                         directory, removed afterwards)
  --help                 this text

ws mode:
  --host H --port P      parleyd's address (default 127.0.0.1:8080)
  --pairs N              sender/recipient pairs (default 100)
  --window W             sends in flight per sender (default 16)
  --duration-s S         measured seconds after 1 s of warm-up (default 10)
  --rate R               total offered msg/s, paced (default 0: unpaced)
  --server-pid PID       parleyd's pid, to report its CPU time (ws mode: a
                         comma-separated list sums the processes' CPU and
                         prints it per delivered message)
  --pair-kind direct|group  a direct conversation per pair (OpenDirect;
                         default) or a group of two the sender creates
                         (always with --cluster-ports: OpenDirect finds a
                         username only on the node it signed up on)
  --cluster-ports P1,P2,P3  a cluster's client ports (issue 22): the map is
                         read from each node's /healthz and users are signed
                         up until every pair has its sender, conversation
                         and recipient on three different nodes (start the
                         nodes with --parley.no-rate-limits)
  --receipts             measure four phases in one run: without, with,
                         without, with receipts (recipients acknowledge
                         and read every message); reports each phase, the
                         cost from the means, and the receipt -> sender
                         latency
  --receipt-interval-ms M  with --receipts: a recipient sends Read (which
                         implies delivery) for the highest sequence it has
                         at most every M ms, as a client with the chat open
                         debouncing receipts (default 10; 0: every message)
  --receipts-both        with --receipts: Delivered and Read, two frames
  --timeline             also print each 100 ms of the measurement whose
                         worst send->deliver latency passed 10 ms

idle mode (--mode idle, same --host/--port, needs --server-pid):
  --connections N        authenticated idle WebSockets to hold (10000);
                         reports the server's RSS per connection

group mode (--mode group, same --host/--port/--server-pid; start parleyd
with --parley.no-rate-limits: the bench signs up every member):
  --members N            group size, the sender included (10000)
  --online K             members connected, one device each (N - 1; at
                         most 15000 per bench process)
  --messages M           timed messages, one per interval (5)
  --interval-ms T        between timed messages (1000)
  --sync-sample S        offline members that then sync from their join (0)
  --storm                afterwards, every online device drops, messages
                         arrive, all reconnect and sync at once: timed and
                         checked for loss and duplicates
  --storm-messages X     messages sent while they are away (5)

sync mode (--mode sync, same --host/--port/--server-pid; start parleyd
with --parley.password-hash=min --parley.no-rate-limits): one user with
--conversations direct conversations (200) of --messages each (20), then
K syncs of every conversation from sequence 0, page by page; times the
first page and the whole sync
  --repeat K             timed syncs after one untimed (20)
  --page-size P          Sync's page size (100)
  --sync-fresh           no cursors (a new device: inbox, recent messages)
  --first-page-only      each sync asks for its first page only
  --perf-ctl FIFO        perf stat's control FIFO: "enable" before the
  --perf-ack FIFO        timed syncs, "disable" after (perf stat -p PID
                         --control fifo:CTL,ACK -D -1)
)";

} // namespace parley::bench
