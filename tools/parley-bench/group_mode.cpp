#include "group_mode.hpp"

#include <utility> // Asio in Boost 1.74 needs it first

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_net.hpp"
#include "ws_peer.hpp"
#include "parley/v1/wire.pb.h"

namespace parley::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t add_chunk = 4000; ///< member ids per GroupChange frame

/// What every connection of a run shares.
struct group_run {
  uint64_t group = 0;
  /// Arrival latencies (µs) of each timed message, by sequence.
  std::map<uint64_t, std::vector<uint32_t>> arrivals;
  uint64_t ready = 0;  ///< connections past Welcome
  uint64_t synced = 0; ///< connections whose sync completed
};

/// One member device (or the sender) on a WebSocket.
struct member : std::enable_shared_from_this<member> {
  member(asio::io_context& ioc, const group_options& o, group_run& r)
    : ws(asio::make_strand(ioc)), opts(o), run(r) {
  }

  websocket::stream<beast::tcp_stream> ws;
  const group_options& opts;
  group_run& run;
  beast::flat_buffer buf;
  std::deque<std::string> outq;
  bool writing = false;
  std::string token;
  uint32_t rid = 1;
  /// Group sequences this device got (pushes and sync), in arrival order.
  std::vector<uint64_t> seqs;
  std::function<void(member&, const v1::ServerFrame&)> on_answer;
  uint64_t sync_after = 0; ///< set: sync from here after Welcome
  bool sync_on_welcome = false;

  void start() {
    auto self = shared_from_this();
    ws.next_layer().async_connect(
      tcp::endpoint{asio::ip::make_address(opts.host), opts.port},
      [self](beast::error_code ec) {
        if (ec)
          throw std::runtime_error("connect: " + ec.message());
        beast::get_lowest_layer(self->ws).socket().set_option(
          tcp::no_delay(true), ec);
        self->ws.binary(true);
        self->ws.async_handshake(self->opts.host, "/v1/ws",
                                 [self](beast::error_code ec) {
                                   if (ec)
                                     throw std::runtime_error(
                                       "handshake: " + ec.message());
                                   v1::ClientFrame f;
                                   auto* h = f.mutable_hello();
                                   h->set_min_version(1);
                                   h->set_max_version(1);
                                   h->set_auth_token(self->token);
                                   self->request(f);
                                   self->read();
                                 });
      });
  }

  uint32_t request(v1::ClientFrame& f) {
    f.set_request_id(rid++);
    outq.push_back(f.SerializeAsString());
    if (!writing)
      write_next();
    return f.request_id();
  }

  void write_next() {
    writing = true;
    auto self = shared_from_this();
    ws.async_write(asio::buffer(outq.front()),
                   [self](beast::error_code ec, size_t) {
                     if (ec)
                       return;
                     self->outq.pop_front();
                     if (self->outq.empty())
                       self->writing = false;
                     else
                       self->write_next();
                   });
  }

  void read() {
    read_frames(shared_from_this(), ws, buf);
  }


  void got(const v1::Message& m, bool live) {
    if (m.conversation_id() != run.group)
      return;
    seqs.push_back(m.server_sequence());
    auto& p = m.payload();
    if (live && p.size() >= 8) {
      int64_t sent;
      std::memcpy(&sent, p.data(), 8);
      run.arrivals[m.server_sequence()].push_back(
        static_cast<uint32_t>((now_ns() - sent) / 1000));
    }
  }

  void sync(const std::string& continuation) {
    v1::ClientFrame f;
    auto* s = f.mutable_sync();
    auto* c = s->add_cursors();
    c->set_conversation_id(run.group);
    c->set_after_sequence(sync_after);
    s->set_page_size(500);
    s->set_continuation(continuation);
    request(f);
  }

  void on_frame(const v1::ServerFrame& f) {
    if (f.has_welcome()) {
      ++run.ready;
      if (sync_on_welcome)
        sync({});
    } else if (f.has_message()) {
      got(f.message(), true);
    } else if (f.has_sync_page()) {
      for (auto& m : f.sync_page().messages())
        got(m, false);
      if (!f.sync_page().continuation().empty())
        sync(f.sync_page().continuation());
      else
        ++run.synced;
    } else if (f.request_id() != 0 && on_answer) {
      on_answer(*this, f);
    }
  }

  void close() {
    beast::error_code ec;
    beast::get_lowest_layer(ws).socket().close(ec);
  }
};

using member_ptr = std::shared_ptr<member>;

/// Runs the io_context until `done` or `limit` passes; false on timeout.
bool run_until(asio::io_context& ioc, const std::function<bool()>& done,
               std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    ioc.run_for(std::chrono::milliseconds(2));
  }
  return true;
}

/// Starts `ms` 500 at a time (the listen backlog) until all said Welcome.
bool connect_members(asio::io_context& ioc, std::vector<member_ptr>& ms,
                     group_run& run) {
  auto base = run.ready;
  size_t started = 0;
  return run_until(
    ioc,
    [&] {
      while (started < ms.size() && started < run.ready - base + 500)
        ms[started++]->start();
      return run.ready - base == ms.size();
    },
    std::chrono::seconds(300));
}

/// Starts `ms` (which sync on Welcome), at most `in_flight` unfinished at
/// a time, until every one has synced; false after 300 s.
bool connect_and_sync(asio::io_context& ioc, std::vector<member_ptr>& ms,
                      group_run& run, size_t in_flight) {
  auto base = run.synced;
  size_t started = 0;
  return run_until(
    ioc,
    [&] {
      while (started < ms.size() && started < run.synced - base + in_flight)
        ms[started++]->start();
      return run.synced - base == ms.size();
    },
    std::chrono::seconds(300));
}

double ms_since(int64_t t0) {
  return (now_ns() - t0) / 1e6;
}

} // namespace

int run_group(const group_options& o, const std::string& cmdline) {
  if (o.online >= o.members || o.members < 2)
    throw std::runtime_error("--online must be below --members (>= 2)");
  if (o.online + o.sync_sample > 15000)
    throw std::runtime_error("at most 15000 connections per bench process "
                             "(the 20,000 open files limit)");
  std::printf("command: %s\n", cmdline.c_str());
  print_wake_cost("before");
  auto tag = "g" + std::to_string(::getpid()) + "x"
             + std::to_string(std::random_device{}() % 100000) + "n";
  // Member 0 is the sender; 1..online are connected; the sample of
  // offline members syncs at the end.
  std::vector<std::string> names;
  for (uint64_t i = 0; i < o.members; ++i)
    names.push_back(tag + std::to_string(i));
  auto t0 = now_ns();
  auto ids = register_all(o.host, o.port, names);
  std::vector<std::string> to_login(names.begin(),
                                    names.begin() + o.online + 1);
  for (uint64_t i = 0; i < o.sync_sample; ++i)
    to_login.push_back(names[o.members - 1 - i]);
  auto tokens = login_all(o.host, o.port, to_login);
  std::printf("setup: %llu sign-ups and %zu logins in %.1f s\n",
              static_cast<unsigned long long>(o.members), to_login.size(),
              ms_since(t0) / 1000);

  asio::io_context ioc;
  group_run run;
  // The sender creates the group and adds everyone, a chunk at a time.
  auto sender = std::make_shared<member>(ioc, o, run);
  sender->token = tokens[0];
  sender->start();
  if (!run_until(ioc, [&] { return run.ready == 1; }, std::chrono::seconds(30)))
    throw std::runtime_error("sender did not connect");
  t0 = now_ns();
  size_t added = 1;
  bool built = false;
  std::string failure;
  uint64_t head = 0;
  auto add_next = [&](member& m) {
    v1::ClientFrame f;
    auto end = std::min(ids.size(), added + add_chunk);
    if (run.group == 0) {
      auto* g = f.mutable_group_create();
      g->set_name("bench group");
      for (auto i = added; i < end; ++i)
        g->add_user_ids(ids[i]);
    } else {
      auto* g = f.mutable_group_change();
      g->set_conversation_id(run.group);
      g->set_change(v1::Membership::CHANGE_ADDED);
      for (auto i = added; i < end; ++i)
        g->add_user_ids(ids[i]);
    }
    added = end;
    m.request(f);
  };
  sender->on_answer = [&](member& m, const v1::ServerFrame& f) {
    if (!f.has_accepted()) {
      failure = f.DebugString();
      return;
    }
    run.group = f.accepted().conversation_id();
    head = f.accepted().server_sequence();
    if (added < ids.size())
      add_next(m);
    else
      built = true;
  };
  add_next(*sender);
  if (!run_until(ioc, [&] { return built || !failure.empty(); },
                 std::chrono::seconds(600))
      || !failure.empty())
    throw std::runtime_error("building the group failed: " + failure);
  std::printf("group of %llu members built in %.1f s (%llu membership "
              "events)\n",
              static_cast<unsigned long long>(o.members), ms_since(t0) / 1000,
              static_cast<unsigned long long>(head));

  std::vector<member_ptr> online;
  for (uint64_t i = 1; i <= o.online; ++i) {
    auto m = std::make_shared<member>(ioc, o, run);
    m->token = tokens[i];
    online.push_back(m);
  }
  t0 = now_ns();
  if (!connect_members(ioc, online, run))
    throw std::runtime_error("not all members connected");
  std::printf("%llu member devices online in %.1f s\n",
              static_cast<unsigned long long>(o.online), ms_since(t0) / 1000);
  ioc.run_for(std::chrono::milliseconds(500));

  // Timed messages: send, wait until every online device has it.
  std::vector<uint64_t> sent_seqs;
  auto send_one = [&](const std::string& cmid) {
    v1::ClientFrame f;
    auto* s = f.mutable_send();
    s->set_conversation_id(run.group);
    s->set_client_message_id(cmid);
    std::string payload(64, 'x');
    auto now = now_ns();
    std::memcpy(payload.data(), &now, 8);
    s->set_payload(payload);
    bool answered = false;
    sender->on_answer = [&](member&, const v1::ServerFrame& a) {
      answered = true;
      if (a.has_accepted())
        sent_seqs.push_back(head = a.accepted().server_sequence());
      else
        failure = a.DebugString();
    };
    sender->request(f);
    return run_until(ioc, [&] { return answered; }, std::chrono::seconds(30))
           && failure.empty();
  };
  auto cpu0 = self_cpu();
  auto srv0 = proc_cpu(o.server_pid);
  auto wall0 = now_ns();
  for (uint64_t i = 0; i < o.messages; ++i) {
    auto start = now_ns();
    if (!send_one("m" + std::to_string(i)))
      throw std::runtime_error("send failed: " + failure);
    auto seq = sent_seqs.back();
    bool all = run_until(
      ioc, [&] { return run.arrivals[seq].size() == o.online; },
      std::chrono::seconds(60));
    auto& lat = run.arrivals[seq];
    std::sort(lat.begin(), lat.end());
    if (lat.empty()) {
      std::printf("message %llu: reached no device\n",
                  static_cast<unsigned long long>(i + 1));
    } else {
      auto last_ms = lat.back() / 1000.0;
      std::printf("message %llu (seq %llu): %zu of %llu online devices%s; "
                  "first %.1f ms, p50 %.1f ms, all %.1f ms; %.0f "
                  "deliveries/s\n",
                  static_cast<unsigned long long>(i + 1),
                  static_cast<unsigned long long>(seq), lat.size(),
                  static_cast<unsigned long long>(o.online),
                  all ? "" : " (timed out)", lat.front() / 1000.0,
                  lat[lat.size() / 2] / 1000.0, last_ms,
                  lat.size() / (last_ms / 1000.0));
    }
    auto spent = (now_ns() - start) / 1'000'000;
    if (i + 1 < o.messages && spent < int64_t(o.interval_ms))
      ioc.run_for(std::chrono::milliseconds(o.interval_ms - spent));
  }
  auto wall = (now_ns() - wall0) / 1e9;
  std::printf("cpu: bench client %.2f s, server %.2f s over %.1f s wall\n",
              self_cpu() - cpu0,
              o.server_pid > 0 ? proc_cpu(o.server_pid) - srv0 : -1.0, wall);
  print_wake_cost("after");

  if (o.sync_sample > 0) {
    // Offline members come online and sync from their join.
    std::vector<member_ptr> sample;
    for (uint64_t i = 0; i < o.sync_sample; ++i) {
      auto m = std::make_shared<member>(ioc, o, run);
      m->token = tokens[o.online + 1 + i];
      m->sync_on_welcome = true;
      sample.push_back(m);
    }
    t0 = now_ns();
    bool ok = connect_and_sync(ioc, sample, run, 500);
    size_t complete = 0;
    for (auto& m : sample) {
      std::vector<uint64_t> s = m->seqs;
      std::sort(s.begin(), s.end());
      complete += std::includes(s.begin(), s.end(), sent_seqs.begin(),
                                sent_seqs.end());
    }
    std::printf("%llu offline members synced from their join in %.1f s%s: "
                "%zu have every timed message\n",
                static_cast<unsigned long long>(o.sync_sample),
                ms_since(t0) / 1000, ok ? "" : " (timed out)", complete);
    for (auto& m : sample)
      m->close();
  }

  if (o.storm) {
    // Every online device drops; messages arrive meanwhile; all reconnect
    // and sync from what they had, at once.
    for (auto& m : online)
      m->close();
    ioc.run_for(std::chrono::milliseconds(1000));
    for (uint64_t i = 0; i < o.storm_messages; ++i)
      if (!send_one("s" + std::to_string(i)))
        throw std::runtime_error("send failed: " + failure);
    std::vector<member_ptr> back;
    for (auto& old : online) {
      auto m = std::make_shared<member>(ioc, o, run);
      m->token = old->token;
      m->seqs = old->seqs;
      m->sync_after = m->seqs.empty() ? 0 : *std::max_element(
                                              m->seqs.begin(), m->seqs.end());
      m->sync_on_welcome = true;
      back.push_back(m);
    }
    online.clear();
    t0 = now_ns();
    bool ok = connect_and_sync(ioc, back, run, 1000);
    auto took = ms_since(t0) / 1000;
    // Each device: every sequence from its first to the head, once.
    size_t exact = 0, dups = 0, gaps = 0;
    for (auto& m : back) {
      auto s = m->seqs;
      std::sort(s.begin(), s.end());
      auto u = std::unique(s.begin(), s.end());
      dups += s.end() - u;
      s.erase(u, s.end());
      bool contiguous = !s.empty() && s.back() == head
                        && s.back() - s.front() + 1 == s.size();
      gaps += contiguous ? 0 : 1;
      exact += contiguous && m->seqs.size() == s.size();
    }
    std::printf("reconnect storm: %zu devices reconnected and synced in %.1f "
                "s%s; %zu have every message from their first to the head "
                "(%llu) exactly once, %zu duplicates, %zu with gaps\n",
                back.size(), took, ok ? "" : " (timed out)", exact,
                static_cast<unsigned long long>(head), dups, gaps);
    for (auto& m : back)
      m->close();
  } else {
    for (auto& m : online)
      m->close();
  }
  sender->close();
  ioc.run_for(std::chrono::milliseconds(500));
  return 0;
}

} // namespace parley::bench
