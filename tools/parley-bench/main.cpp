// parley-bench: Parley's load generator. Bounded in count and time; prints
// the command line it ran with its results.
//
// Mode `accept`: drives the accept path in-process through the real actors
// (directory, conversation, store reader, store writer) on a real LevelDB
// with fsync on: N conversations x M messages of P bytes, W sends in flight
// per conversation. Before that it measures the baseline on the same disk:
// one message per synced LevelDB write, as a store without group commit
// would do.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "runtime/config.hpp"
#include "runtime/core/reply_deadlines.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/node.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/leveldb_backend.hpp"
#include "group_mode.hpp"
#include "sync_mode.hpp"
#include "usage.hpp"
#include "ws_mode.hpp"

using namespace parley;
using namespace std::chrono_literals;
using bench_clock = std::chrono::steady_clock;

namespace {

struct options {
  std::string mode = "accept";
  uint64_t conversations = 1000;
  uint64_t messages = 100;
  uint64_t window = 8;
  uint64_t payload = 200;
  uint64_t baseline_writes = 2000;
  uint64_t time_limit_s = 120;
  std::string data;
  bench::ws_options ws;
  uint64_t connections = 10000;
  bench::group_options group;
  bench::sync_options sync;
  bool conversations_set = false;
};

// The --help text is in usage.hpp.

bool parse(int argc, char** argv, options& o) {
  bool online_set = false, messages_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::runtime_error("missing value for " + a);
      return argv[++i];
    };
    auto num = [&]() -> uint64_t {
      auto v = need();
      size_t pos = 0;
      auto x = std::stoull(v, &pos);
      if (pos != v.size() || x == 0)
        throw std::runtime_error("bad value for " + a + ": " + v);
      return x;
    };
    // A comma-separated list of positive numbers (at least one).
    auto nums = [&]() -> std::vector<uint64_t> {
      auto v = need();
      std::vector<uint64_t> out;
      for (size_t at = 0; at <= v.size();) {
        auto end = std::min(v.find(',', at), v.size());
        size_t pos = 0;
        auto part = v.substr(at, end - at);
        auto x = part.empty() ? 0 : std::stoull(part, &pos);
        if (x == 0 || pos != part.size())
          throw std::runtime_error("bad value for " + a + ": " + v);
        out.push_back(x);
        at = end + 1;
      }
      return out;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(bench::usage, stdout);
      std::exit(0);
    } else if (a == "--mode") {
      o.mode = need();
    } else if (a == "--conversations") {
      o.conversations = num();
      o.conversations_set = true;
    } else if (a == "--messages") {
      o.messages = num();
      messages_set = true;
    } else if (a == "--window") {
      o.window = num();
    } else if (a == "--payload") {
      o.payload = num();
    } else if (a == "--baseline-writes") {
      o.baseline_writes = num();
    } else if (a == "--time-limit-s") {
      o.time_limit_s = num();
    } else if (a == "--data") {
      o.data = need();
    } else if (a == "--host") {
      o.ws.host = need();
    } else if (a == "--port") {
      o.ws.port = static_cast<uint16_t>(num());
    } else if (a == "--pairs") {
      o.ws.pairs = num();
    } else if (a == "--duration-s") {
      o.ws.duration_s = num();
    } else if (a == "--rate") {
      o.ws.rate = num();
    } else if (a == "--receipts") {
      o.ws.receipts = true;
    } else if (a == "--receipts-both") {
      o.ws.receipts_both = true;
    } else if (a == "--timeline") {
      o.ws.timeline = true;
    } else if (a == "--receipt-interval-ms") {
      o.ws.receipt_interval_ms = num();
    } else if (a == "--connections") {
      o.connections = num();
    } else if (a == "--server-pid") {
      for (auto pid : nums())
        o.ws.server_pids.push_back(static_cast<int64_t>(pid));
      o.ws.server_pid = o.ws.server_pids.front();
      o.group.server_pid = o.ws.server_pid;
    } else if (a == "--pair-kind") {
      auto k = need();
      if (k != "direct" && k != "group")
        throw std::runtime_error("--pair-kind: direct or group");
      o.ws.group_pairs = k == "group";
    } else if (a == "--cluster-ports") {
      for (auto port : nums())
        o.ws.cluster_ports.push_back(static_cast<uint16_t>(port));
      o.ws.port = o.ws.cluster_ports.front();
    } else if (a == "--members") {
      o.group.members = num();
    } else if (a == "--online") {
      o.group.online = num();
      online_set = true;
    } else if (a == "--interval-ms") {
      o.group.interval_ms = num();
    } else if (a == "--sync-sample") {
      o.group.sync_sample = num();
    } else if (a == "--storm") {
      o.group.storm = true;
    } else if (a == "--storm-messages") {
      o.group.storm_messages = num();
    } else if (a == "--repeat") {
      o.sync.repeat = num();
    } else if (a == "--page-size") {
      o.sync.page_size = num();
    } else if (a == "--sync-fresh") {
      o.sync.fresh = true;
    } else if (a == "--first-page-only") {
      o.sync.first_page_only = true;
    } else if (a == "--perf-ctl") {
      o.sync.perf_ctl = need();
    } else if (a == "--perf-ack") {
      o.sync.perf_ack = need();
    } else {
      throw std::runtime_error("unknown argument " + a);
    }
  }
  if (o.mode != "accept" && o.mode != "ws" && o.mode != "idle"
      && o.mode != "group" && o.mode != "sync")
    throw std::runtime_error("unknown mode " + o.mode);
  o.group.host = o.ws.host;
  o.group.port = o.ws.port;
  if (!online_set)
    o.group.online = o.group.members - 1;
  if (messages_set)
    o.group.messages = o.messages;
  o.ws.window = o.window == 8 ? 16 : o.window; // ws default: 16
  o.ws.payload = o.payload;
  o.sync.host = o.ws.host;
  o.sync.port = o.ws.port;
  o.sync.server_pid = o.ws.server_pid;
  o.sync.payload = o.payload;
  o.sync.time_limit_s = o.time_limit_s;
  if (o.conversations_set)
    o.sync.conversations = o.conversations;
  if (messages_set)
    o.sync.messages = o.messages;
  return true;
}

// -- baseline: one message per synced write ---------------------------------------

double baseline_rate(kv_backend& kv, const options& o,
                     const std::string& payload) {
  auto t0 = bench_clock::now();
  for (uint64_t i = 0; i < o.baseline_writes; ++i) {
    write_batch b;
    stored_message m;
    m.conversation = UINT64_MAX - 1; // apart from the bench conversations
    m.seq = i + 1;
    m.sender_user = 1;
    m.sender_device = 1;
    m.client_message_id = "b" + std::to_string(i);
    m.sent_at_ms = system_clock_ms();
    m.payload = payload;
    store::add_message(b, m);
    if (auto err = kv.write(b, true)) {
      std::fprintf(stderr, "baseline write failed\n");
      std::exit(1);
    }
  }
  std::chrono::duration<double> dt = bench_clock::now() - t0;
  return o.baseline_writes / dt.count();
}

// -- accept path ----------------------------------------------------------------

struct driver_state {
  conversation_actor conv;
  conversation_id id = 0;
  uint64_t next = 0, done = 0, total = 0;
  std::string payload;
  std::vector<bench_clock::time_point> started;
  uint32_t* latency_us = nullptr; // `total` slots of the shared array
  std::atomic<uint64_t>* remaining = nullptr;
  std::atomic<uint64_t>* errors = nullptr;
  /// Sends waiting for their answer (the send's index), by tag: a
  /// deadline as every request in Parley has, without a CAF clock entry
  /// per send (as the gateway asks; the run is bounded by --time-limit-s
  /// too).
  reply_deadlines<uint64_t> awaited{timeouts::commit};
};

using driver_ptr = caf::stateful_actor<driver_state>*;

void arm(driver_ptr self) {
  if (self->state.awaited.arm())
    self->delayed_send(self, self->state.awaited.period(),
                       expire_atom::value);
}

void send_next(driver_ptr self) {
  auto& st = self->state;
  auto i = st.next++;
  send_request req{st.id, 1, 1, "b" + std::to_string(i), 1, st.payload};
  st.started[i] = bench_clock::now();
  auto tag = st.awaited.add(self->clock().now(), i);
  self->send(st.conv, send_atom::value, tagged_send{tag, std::move(req)});
  arm(self);
}

void failed(driver_ptr self) {
  self->state.errors->fetch_add(1);
  self->quit();
}

caf::behavior driver(driver_ptr self, conversation_actor conv,
                     conversation_id id, uint64_t total, uint64_t window,
                     std::string payload, uint32_t* latency_us,
                     std::atomic<uint64_t>* remaining,
                     std::atomic<uint64_t>* errors) {
  auto& st = self->state;
  st.conv = conv;
  st.id = id;
  st.total = total;
  st.payload = std::move(payload);
  st.started.resize(total);
  st.latency_us = latency_us;
  st.remaining = remaining;
  st.errors = errors;
  while (st.next < total && st.next < window)
    send_next(self);
  return {
    [=](send_atom, send_answer& a) {
      auto& st = self->state;
      auto i = st.awaited.take(a.tag);
      if (!i)
        return; // timed out already
      if (a.err) {
        failed(self);
        return;
      }
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        bench_clock::now() - st.started[*i]);
      st.latency_us[*i] = static_cast<uint32_t>(us.count());
      st.remaining->fetch_sub(1);
      if (++st.done == st.total)
        self->quit();
      else if (st.next < st.total)
        send_next(self);
    },
    [=](expire_atom) {
      auto& st = self->state;
      st.awaited.tick();
      if (st.awaited.expire(self->clock().now(), [](uint64_t, uint64_t&) {})
          > 0) {
        failed(self);
        return;
      }
      arm(self);
    },
  };
}

int run_nodes(const options& o, const std::string& cmdline,
              std::shared_ptr<kv_backend> kv, const std::string& payload,
              double base);

int run_accept(const options& o, const std::string& cmdline) {
  std::string dir = o.data;
  bool temp = dir.empty();
  if (temp)
    dir = (std::filesystem::temp_directory_path()
           / ("parley-bench-" + std::to_string(::getpid())))
            .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto kv = leveldb_backend::open(dir);
  if (!kv) {
    std::fprintf(stderr, "parley-bench: cannot open %s\n", dir.c_str());
    return 1;
  }
  std::mt19937_64 rng{1};
  std::string payload(o.payload, '\0');
  for (auto& c : payload)
    c = static_cast<char>(rng());

  auto base = baseline_rate(**kv, o, payload);
  auto result = run_nodes(o, cmdline, std::move(*kv), payload, base);
  if (temp)
    std::filesystem::remove_all(dir);
  return result;
}

int run_nodes(const options& o, const std::string& cmdline,
              std::shared_ptr<kv_backend> kv, const std::string& payload,
              double base) {
  node_config cfg;
  if (auto t = std::getenv("BENCH_THREADS"))
    cfg.set("scheduler.max-threads", std::atoi(t));
  if (auto t = std::getenv("BENCH_THROUGHPUT"))
    cfg.set("scheduler.max-throughput", std::atoi(t));
  caf::actor_system sys{cfg};
  node_options nopts;
  nopts.kv = std::move(kv);
  nopts.conversation = cfg.conversation();
  nopts.writer = cfg.writer();
  node n{sys, nopts};
  n.start();
  caf::scoped_actor self{sys};
  std::vector<conversation_actor> convs;
  for (uint64_t c = 1; c <= o.conversations; ++c) {
    self->request(n.directory(), 60s, caf::get_atom::value, c)
      .receive([&](conversation_actor& hdl) { convs.push_back(hdl); },
               [&](caf::error&) {});
    self->request(convs.back(), 60s, caf::join_atom::value, user_id{1})
      .receive([](sequence) {}, [](caf::error&) {});
  }
  writer_stats before;
  self->request(n.writer(), 60s, stats_atom::value)
    .receive([&](writer_stats& s) { before = s; }, [](caf::error&) {});

  auto total = o.conversations * o.messages;
  std::vector<uint32_t> latency(total, 0);
  std::atomic<uint64_t> remaining{total};
  std::atomic<uint64_t> errors{0};
  auto t0 = bench_clock::now();
  for (uint64_t c = 0; c < o.conversations; ++c)
    sys.spawn(driver, convs[c], c + 1, o.messages, o.window, payload,
              latency.data() + c * o.messages, &remaining, &errors);
  auto deadline = t0 + std::chrono::seconds(o.time_limit_s);
  while (remaining.load() > 0 && errors.load() == 0
         && bench_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  std::chrono::duration<double> dt = bench_clock::now() - t0;
  writer_stats after;
  self->request(n.writer(), 60s, stats_atom::value)
    .receive([&](writer_stats& s) { after = s; }, [](caf::error&) {});
  auto accepted = total - remaining.load();
  n.stop();

  latency.erase(std::remove(latency.begin(), latency.end(), 0u),
                latency.end());
  auto rate = accepted / dt.count();
  auto syncs = after.syncs - before.syncs;
  std::printf("command: %s\n", cmdline.c_str());
  std::printf("baseline, one message per synced write: %.0f msg/s "
              "(%llu writes)\n",
              base, static_cast<unsigned long long>(o.baseline_writes));
  std::printf("accepted: %llu of %llu in %.2f s = %.0f msg/s (%.1fx "
              "baseline)\n",
              static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(total), dt.count(), rate,
              rate / base);
  std::printf("accept latency: p50 %.0f us, p99 %.0f us, max %.0f us\n",
              bench::percentile(latency, 0.50), bench::percentile(latency, 0.99),
              bench::percentile(latency, 1.0));
  std::printf("synced writes: %llu, messages per synced write: %.1f\n",
              static_cast<unsigned long long>(syncs),
              syncs ? double(accepted) / syncs : 0.0);
  if (errors.load() > 0)
    std::printf("ERRORS: %llu sends failed\n",
                static_cast<unsigned long long>(errors.load()));
  if (remaining.load() > 0)
    std::printf("INCOMPLETE: time limit of %llu s reached\n",
                static_cast<unsigned long long>(o.time_limit_s));
  return errors.load() == 0 && remaining.load() == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  try {
    parse(argc, argv, o);
  } catch (std::exception& e) {
    std::fprintf(stderr, "parley-bench: %s (try --help)\n", e.what());
    return 2;
  }
  std::string cmdline = "parley-bench";
  for (int i = 1; i < argc; ++i)
    cmdline += std::string(" ") + argv[i];
  spdlog::set_level(spdlog::level::warn);
  if (o.mode == "ws" || o.mode == "idle" || o.mode == "group"
      || o.mode == "sync") {
    try {
      if (o.mode == "sync")
        return bench::run_sync(o.sync, cmdline);
      if (o.mode == "group")
        return bench::run_group(o.group, cmdline);
      if (o.mode == "idle")
        return bench::run_idle(o.ws, o.connections, cmdline);
      return bench::run_ws(o.ws, cmdline);
    } catch (std::exception& e) {
      std::fprintf(stderr, "parley-bench: %s\n", e.what());
      return 1;
    }
  }
  return run_accept(o, cmdline);
}
