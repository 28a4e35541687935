#include "ws_mode.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>

#include "bench_net.hpp"
#include "cluster_pairs.hpp"
#include "prom_text.hpp"
#include "ws_peer.hpp"

#include <ctime>

namespace parley::bench {

using clock_type = std::chrono::steady_clock;

namespace {

/// The server's parley_send_latency_seconds now, if it answers with one.
std::optional<prom_histogram> server_send_latency(const ws_options& o) {
  try {
    return parse_histogram(http_get(o.host, o.port, "/metrics"),
                           "parley_send_latency_seconds");
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// The server's own share of the sends between two readings, as bucket
/// bounds (the histogram has no finer resolution).
void print_server_share(const std::optional<prom_histogram>& before,
                        const std::optional<prom_histogram>& after) {
  std::optional<prom_histogram> d;
  if (before && after)
    d = before->delta_to(*after);
  if (!d || d->count() == 0) {
    std::printf("server share: not available (no parley_send_latency_seconds "
                "in /metrics)\n");
    return;
  }
  auto ms = [&](double q) { return *d->quantile_bound(q) * 1000; };
  std::printf("server share (frame read -> Accepted answered, from /metrics, "
              "bucket bounds): p50 <= %g ms, p99 <= %g ms, p999 <= %g ms over "
              "%llu sends\n",
              ms(0.5), ms(0.99), ms(0.999),
              static_cast<unsigned long long>(d->count()));
}

/// user + system CPU seconds of every server process (-1 if none given or
/// one is gone).
double servers_cpu(const ws_options& o) {
  if (o.server_pids.empty())
    return proc_cpu(o.server_pid);
  double sum = 0;
  for (auto pid : o.server_pids) {
    auto c = proc_cpu(pid);
    if (c < 0)
      return -1;
    sum += c;
  }
  return sum;
}

} // namespace

double percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty())
    return 0;
  auto k = static_cast<size_t>(p * (v.size() - 1));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

namespace {

/// Local wall-clock time as LevelDB's LOG writes it (HH:MM:SS.micros), to
/// line a timeline up with the server's logs.
std::string wall_clock_text() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
              now.time_since_epoch())
              .count()
            % 1'000'000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%06lld", tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<long long>(us));
  return buf;
}

} // namespace

int run_ws(const ws_options& o, const std::string& cmdline) {
  auto run_id = std::to_string(::getpid()) + "x"
                + std::to_string(std::random_device{}() % 100000);
  std::vector<pair_plan> plans;
  if (!o.cluster_ports.empty()) {
    plans = plan_cross_node_pairs(o);
  } else if (o.group_pairs) {
    std::vector<std::string> names;
    for (uint64_t i = 0; i < o.pairs; ++i) {
      names.push_back("bs" + run_id + "n" + std::to_string(i));
      names.push_back("br" + run_id + "n" + std::to_string(i));
    }
    auto ids = register_all(o.host, o.port, names);
    auto tokens = login_all(o.host, o.port, names);
    for (uint64_t i = 0; i < o.pairs; ++i) {
      pair_plan p;
      p.sender_name = names[2 * i];
      p.sender_token = tokens[2 * i];
      p.recipient_name = names[2 * i + 1];
      p.recipient_token = tokens[2 * i + 1];
      p.recipient_id = ids[2 * i + 1];
      p.sender_port = p.recipient_port = o.port;
      plans.push_back(p);
    }
  } else {
    for (uint64_t i = 0; i < o.pairs; ++i) {
      pair_plan p;
      p.sender_name = "bs" + run_id + "n" + std::to_string(i);
      p.recipient_name = "br" + run_id + "n" + std::to_string(i);
      p.sender_token = login(o, p.sender_name);
      p.recipient_token = login(o, p.recipient_name);
      p.sender_port = p.recipient_port = o.port;
      plans.push_back(p);
    }
  }
  // A peer keeps a reference to its options: one copy per port, never
  // resized after the peers exist.
  std::map<uint16_t, ws_options> opts_of;
  for (auto& p : plans)
    for (auto port : {p.sender_port, p.recipient_port})
      if (!opts_of.count(port)) {
        opts_of[port] = o;
        opts_of[port].port = port;
      }
  asio::io_context ioc;
  stats st;
  std::vector<std::shared_ptr<peer>> peers;
  uint64_t ready = 0;
  auto on_ready = [&] { ++ready; };
  std::string padding(std::max<uint64_t>(o.payload, 8), 'x');
  for (auto& plan : plans) {
    auto shared = std::make_shared<pair_state>();
    auto r = std::make_shared<peer>(ioc, opts_of[plan.recipient_port], st);
    r->token = plan.recipient_token;
    r->pair = shared;
    peers.push_back(r);
    auto s = std::make_shared<peer>(ioc, opts_of[plan.sender_port], st);
    s->pair = shared;
    s->token = plan.sender_token;
    s->sender = true;
    s->peer_name = plan.recipient_name;
    if (o.group_pairs || !o.cluster_ports.empty()) {
      s->group_with = plan.recipient_id;
      s->conv_fits = plan.conv_fits;
    }
    s->padding = padding;
    if (o.rate > 0)
      s->interval_ns = 1e9 * double(o.pairs) / double(o.rate);
    peers.push_back(s);
  }
  if (!connect_all(ioc, peers, ready, on_ready))
    return 1;
  // Paced senders are pumped by one 1 ms ticker, not a timer each: 100
  // timers firing at their own instants cost the client a wake-up per
  // message, CPU the server then lacks (the latency is measured from the
  // timestamp taken when a message is actually sent).
  asio::steady_timer pacer{ioc};
  std::function<void()> tick = [&] {
    for (auto& p : peers)
      if (p->sender)
        p->pump();
    pacer.expires_at(pacer.expiry() + std::chrono::milliseconds(1));
    pacer.async_wait([&](beast::error_code ec) {
      if (!ec)
        tick();
    });
  };
  // Paced senders start at evenly spread phases: the offered load is a
  // steady stream, not all pairs sending in the same instant.
  auto start_ns = now_ns();
  uint64_t nth = 0;
  for (auto& p : peers)
    if (p->sender) {
      p->next_send_ns = start_ns
                        + static_cast<int64_t>(p->interval_ns * double(nth++)
                                               / double(o.pairs));
      p->pump();
    }
  if (o.rate > 0) {
    pacer.expires_after(std::chrono::milliseconds(1));
    pacer.async_wait([&](beast::error_code ec) {
      if (!ec)
        tick();
    });
  }
  std::printf("command: %s\n", cmdline.c_str());
  std::printf("pairs %llu (%s), window %llu, payload %llu B, %s\n",
              static_cast<unsigned long long>(o.pairs),
              o.group_pairs || !o.cluster_ports.empty() ? "groups of two"
                                                        : "direct",
              static_cast<unsigned long long>(o.window),
              static_cast<unsigned long long>(o.payload),
              o.rate ? ("offered " + std::to_string(o.rate) + " msg/s").c_str()
                     : "unpaced");
  uint64_t errors = 0;
  double rate_without = 0;
  // One measured phase (after a second of warm-up) with the current
  // receipt setting; prints its results and returns delivered msg/s.
  auto phase = [&](const char* label) {
    print_wake_cost("before");
    ioc.run_for(std::chrono::seconds(1)); // warm-up
    st = stats{};
    st.send_receipts = label != nullptr && std::string{label} == "receipts on";
    ioc.run_for(std::chrono::milliseconds(200)); // pipelines settle
    auto server0 = server_send_latency(o);
    st.measuring = true;
    st.phase_start_ns = now_ns();
    auto wall_start = wall_clock_text();
    auto cpu0 = self_cpu();
    auto srv0 = servers_cpu(o);
    auto t0 = clock_type::now();
    ioc.run_for(std::chrono::seconds(o.duration_s));
    std::chrono::duration<double> dt = clock_type::now() - t0;
    st.measuring = false;
    auto cpu1 = self_cpu();
    auto srv1 = servers_cpu(o);
    if (label)
      std::printf("-- %s\n", label);
    std::printf("sent %.0f msg/s, accepted %.0f msg/s, delivered %.0f msg/s "
                "over %.1f s; %llu error frames\n",
                st.sent / dt.count(), st.accepted / dt.count(),
                st.delivered / dt.count(), dt.count(),
                static_cast<unsigned long long>(st.errors));
    std::printf("send->deliver latency: p50 %.0f us, p99 %.0f us, p999 %.0f "
                "us, max %.0f us\n",
                percentile(st.latency_us, 0.5),
                percentile(st.latency_us, 0.99),
                percentile(st.latency_us, 0.999),
                percentile(st.latency_us, 1.0));
    if (o.timeline) {
      std::printf("timeline: the measurement started at %s\n",
                  wall_start.c_str());
      for (size_t i = 0; i < st.slot_max_us.size(); ++i)
        if (st.slot_max_us[i] > 10'000)
          std::printf("timeline: %.1f-%.1f s: worst %.1f ms, %u messages "
                      "over 10 ms\n",
                      double(i) / 10, double(i + 1) / 10,
                      st.slot_max_us[i] / 1000.0, st.slot_slow[i]);
    }
    std::printf("send->accepted latency: p50 %.0f us, p99 %.0f us\n",
                percentile(st.accept_latency_us, 0.5),
                percentile(st.accept_latency_us, 0.99));
    print_server_share(server0, server_send_latency(o));
    if (st.send_receipts)
      std::printf("read receipts at senders %.0f /s; read -> sender latency: "
                  "p50 %.0f us, p99 %.0f us, max %.0f us\n",
                  st.receipts / dt.count(),
                  percentile(st.receipt_latency_us, 0.5),
                  percentile(st.receipt_latency_us, 0.99),
                  percentile(st.receipt_latency_us, 1.0));
    std::printf("cpu: bench client %.2f s", cpu1 - cpu0);
    if (srv0 >= 0 && srv1 >= 0)
      std::printf(", server %.2f s", srv1 - srv0);
    std::printf(" over %.1f s wall (2 cores = %.1f s)\n", dt.count(),
                2 * dt.count());
    if (srv0 >= 0 && srv1 >= 0 && st.delivered > 0)
      std::printf("server cpu per delivered message: %.1f us (%zu server "
                  "processes)\n",
                  1e6 * (srv1 - srv0) / double(st.delivered),
                  std::max<size_t>(o.server_pids.size(), 1));
    print_wake_cost("after");
    errors += st.errors;
    return st.delivered / dt.count();
  };
  if (!o.receipts) {
    phase(nullptr);
  } else {
    // Off, on, off, on: this VM's speed drifts by tens of per cent within
    // a minute, and alternating halves the bias of a drift on the cost.
    double rate_with = 0;
    for (int round = 0; round < 2; ++round) {
      rate_without += phase("receipts off");
      rate_with += phase("receipts on");
    }
    std::printf("receipts cost %.1f %% of delivered msg/s (off %.0f, on %.0f "
                "msg/s, mean of two phases each)\n",
                rate_without > 0 ? 100.0 * (1.0 - rate_with / rate_without)
                                 : 0.0,
                rate_without / 2, rate_with / 2);
  }
  pacer.cancel();
  shut_down(ioc, peers);
  return errors == 0 ? 0 : 1;
}

} // namespace parley::bench
