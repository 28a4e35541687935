#include "ws_mode.hpp"

#include <utility> // Asio in Boost 1.74 needs it first

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_net.hpp"
#include "parley/v1/wire.pb.h"
#include "runtime/gateway/coalescing_stream.hpp"

namespace parley::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

std::string http_post(const ws_options& o, const std::string& target,
                      const std::string& body) {
  return bench::http_post(o.host, o.port, target, body);
}

std::string login(const ws_options& o, const std::string& name) {
  http_post(o, "/v1/accounts",
            R"({"username":")" + name + R"(","password":"bench password"})");
  auto body = http_post(o, "/v1/login",
                        R"({"username":")" + name
                          + R"(","password":"bench password","deviceName":"bench"})");
  std::smatch m;
  if (!std::regex_search(body, m, std::regex("\"token\":\"([^\"]+)\"")))
    throw std::runtime_error("login failed for " + name + ": " + body);
  return m[1].str();
}

struct stats {
  uint64_t sent = 0, accepted = 0, delivered = 0, errors = 0, receipts = 0;
  std::vector<uint32_t> latency_us;
  std::vector<uint32_t> receipt_latency_us; ///< Read sent -> sender told
  bool measuring = false;
  bool send_receipts = false; ///< recipients acknowledge and read
};

/// What a pair shares: when the recipient sent Read for each sequence.
struct pair_state {
  std::map<uint64_t, int64_t> read_sent_ns;
};

/// One WebSocket client: a sender or a recipient. One thread runs them all:
/// plain sockets (no strand, no timeouts), and frames queued together leave
/// in one system call (the server's coalescing stream), so the client takes
/// as little of the shared CPU as it can.
struct peer : std::enable_shared_from_this<peer> {
  peer(asio::io_context& ioc, const ws_options& o, stats& st)
    : sock(ioc), timer(ioc), opts(o), s(st) {
  }

  using ws_stream = websocket::stream<gateway::coalescing_stream>;
  tcp::socket sock; ///< until connected, then moved into `ws`
  std::unique_ptr<ws_stream> ws;
  asio::steady_timer timer;
  const ws_options& opts;
  stats& s;
  beast::flat_buffer buf;
  std::deque<std::string> outq;
  bool writing = false;
  std::string token;
  std::string peer_name;       ///< senders: whom to open_direct
  bool sender = false;
  bool ready = false;
  uint64_t conv = 0;
  uint32_t rid = 1;
  uint64_t inflight = 0, counter = 0;
  double interval_ns = 0;      ///< pacing per sender, 0 = none
  int64_t next_send_ns = 0;
  std::string padding;
  bool stop = false;
  std::shared_ptr<pair_state> pair;

  void start(std::function<void()> on_ready) {
    auto self = shared_from_this();
    sock.async_connect(
      tcp::endpoint{asio::ip::make_address(opts.host), opts.port},
      [self, on_ready](beast::error_code ec) {
        if (ec)
          throw std::runtime_error("connect: " + ec.message());
        self->sock.set_option(tcp::no_delay(true), ec);
        self->ws = std::make_unique<ws_stream>(
          gateway::coalescing_stream{std::move(self->sock)});
        self->ws->binary(true);
        self->ws->async_handshake(opts_host(self), "/v1/ws",
                                 [self, on_ready](beast::error_code ec) {
                                   if (ec)
                                     throw std::runtime_error(
                                       "handshake: " + ec.message());
                                   v1::ClientFrame f;
                                   f.set_request_id(self->rid++);
                                   auto* h = f.mutable_hello();
                                   h->set_min_version(1);
                                   h->set_max_version(1);
                                   h->set_auth_token(self->token);
                                   self->write(f.SerializeAsString());
                                   self->on_ready_ = on_ready;
                                   self->read();
                                 });
      });
  }

  static std::string opts_host(const std::shared_ptr<peer>& p) {
    return p->opts.host;
  }

  std::function<void()> on_ready_;

  void write(std::string data) {
    outq.push_back(std::move(data));
    if (!writing)
      write_next();
  }

  void write_next() {
    writing = true;
    auto self = shared_from_this();
    ws->async_write(asio::buffer(outq.front()),
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
    auto self = shared_from_this();
    ws->async_read(buf, [self](beast::error_code ec, size_t) {
      if (ec)
        return;
      v1::ServerFrame f;
      auto data = self->buf.data();
      if (f.ParseFromArray(data.data(), static_cast<int>(data.size())))
        self->on_frame(f);
      self->buf.consume(self->buf.size());
      self->read();
    });
  }

  void on_frame(const v1::ServerFrame& f) {
    if (f.has_welcome()) {
      if (sender) {
        v1::ClientFrame o;
        o.set_request_id(rid++);
        o.mutable_open_direct()->set_username(peer_name);
        write(o.SerializeAsString());
      } else {
        ready = true;
        on_ready_();
      }
    } else if (f.has_direct_opened()) {
      conv = f.direct_opened().conversation_id();
      ready = true;
      on_ready_();
    } else if (f.has_accepted()) {
      --inflight;
      if (s.measuring)
        ++s.accepted;
      pump();
    } else if (f.has_message()) {
      auto& p = f.message().payload();
      if (p.size() >= 8 && s.measuring) {
        int64_t sent;
        std::memcpy(&sent, p.data(), 8);
        s.latency_us.push_back(
          static_cast<uint32_t>((now_ns() - sent) / 1000));
        ++s.delivered;
      }
      if (s.send_receipts) {
        // As a client that shows messages at once: read (implying
        // delivered; or both frames), for each message or debounced to the
        // highest every interval.
        conv = f.message().conversation_id();
        received = std::max(received, f.message().server_sequence());
        if (opts.receipt_interval_ms == 0) {
          send_receipts();
        } else if (!receipt_timer_armed) {
          receipt_timer_armed = true;
          timer.expires_after(
            std::chrono::milliseconds(opts.receipt_interval_ms));
          auto self = shared_from_this();
          timer.async_wait([self](beast::error_code ec) {
            self->receipt_timer_armed = false;
            if (!ec)
              self->send_receipts();
          });
        }
      }
    } else if (f.has_receipt()) {
      auto& r = f.receipt();
      if (r.kind() == v1::RECEIPT_KIND_READ) {
        auto& sent = pair->read_sent_ns;
        auto i = sent.find(r.up_to_sequence());
        if (i != sent.end() && s.measuring) {
          s.receipt_latency_us.push_back(
            static_cast<uint32_t>((now_ns() - i->second) / 1000));
          ++s.receipts;
        }
        sent.erase(sent.begin(), sent.upper_bound(r.up_to_sequence()));
      }
    } else if (f.has_error()) {
      ++s.errors;
      if (sender && f.request_id() != 0) {
        --inflight;
        pump();
      }
    }
  }

  uint64_t received = 0, acked = 0; ///< recipients: highest seen, sent
  bool receipt_timer_armed = false;

  void send_receipts() {
    if (received <= acked)
      return;
    acked = received;
    if (opts.receipts_both) {
      v1::ClientFrame d;
      d.set_request_id(rid++);
      d.mutable_delivered()->set_conversation_id(conv);
      d.mutable_delivered()->set_up_to_sequence(acked);
      write(d.SerializeAsString());
    }
    v1::ClientFrame r;
    r.set_request_id(rid++);
    r.mutable_read()->set_conversation_id(conv);
    r.mutable_read()->set_up_to_sequence(acked);
    pair->read_sent_ns[acked] = now_ns();
    write(r.SerializeAsString());
  }

  /// Sends while the window and the pace allow.
  void pump() {
    while (!stop && inflight < opts.window) {
      auto now = now_ns();
      if (interval_ns > 0 && now < next_send_ns)
        return; // the pacer's next tick tries again
      if (interval_ns > 0)
        next_send_ns = std::max(next_send_ns + int64_t(interval_ns),
                                now - int64_t(interval_ns) * 4);
      v1::ClientFrame f;
      f.set_request_id(rid == 0 ? ++rid : rid++);
      auto* snd = f.mutable_send();
      snd->set_conversation_id(conv);
      snd->set_client_message_id("b" + std::to_string(counter++));
      std::string payload = padding;
      auto ts = now_ns();
      std::memcpy(payload.data(), &ts, 8);
      snd->set_payload(payload);
      ++inflight;
      if (s.measuring)
        ++s.sent;
      write(f.SerializeAsString());
    }
  }
};

/// Closes every socket and lets the cancelled handlers finish, so that no
/// stream outlives its io_context.
void shut_down(asio::io_context& ioc, std::vector<std::shared_ptr<peer>>& peers) {
  for (auto& p : peers) {
    p->stop = true;
    p->timer.cancel();
    beast::error_code ec;
    if (p->ws)
      beast::get_lowest_layer(*p->ws).close(ec);
    else
      p->sock.close(ec);
  }
  ioc.restart();
  ioc.run_for(std::chrono::seconds(2));
  peers.clear();
  ioc.stop();
}

/// Connects and says Hello on every peer, 500 at a time so the listen
/// backlog never overflows; false (after closing them) if not all are
/// ready within 120 s.
bool connect_all(asio::io_context& ioc,
                 std::vector<std::shared_ptr<peer>>& peers, uint64_t& ready,
                 const std::function<void()>& on_ready) {
  size_t started = 0;
  auto deadline = clock_type::now() + std::chrono::seconds(120);
  while (ready < peers.size() && clock_type::now() < deadline) {
    while (started < peers.size() && started < ready + 500)
      peers[started++]->start(on_ready);
    ioc.run_for(std::chrono::milliseconds(10));
  }
  if (ready == peers.size())
    return true;
  std::fprintf(stderr, "parley-bench: only %llu of %zu connections ready\n",
               static_cast<unsigned long long>(ready), peers.size());
  shut_down(ioc, peers);
  return false;
}

} // namespace

double percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty())
    return 0;
  auto k = static_cast<size_t>(p * (v.size() - 1));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

int run_ws(const ws_options& o, const std::string& cmdline) {
  auto run_id = std::to_string(::getpid()) + "x"
                + std::to_string(std::random_device{}() % 100000);
  std::vector<std::pair<std::string, std::string>> tokens; // sender, recipient
  std::vector<std::string> recv_names;
  for (uint64_t i = 0; i < o.pairs; ++i) {
    auto s = "bs" + run_id + "n" + std::to_string(i);
    auto r = "br" + run_id + "n" + std::to_string(i);
    tokens.emplace_back(login(o, s), login(o, r));
    recv_names.push_back(r);
  }
  asio::io_context ioc;
  stats st;
  std::vector<std::shared_ptr<peer>> peers;
  uint64_t ready = 0;
  auto on_ready = [&] { ++ready; };
  std::string padding(std::max<uint64_t>(o.payload, 8), 'x');
  for (uint64_t i = 0; i < o.pairs; ++i) {
    auto shared = std::make_shared<pair_state>();
    auto r = std::make_shared<peer>(ioc, o, st);
    r->token = tokens[i].second;
    r->pair = shared;
    peers.push_back(r);
    auto s = std::make_shared<peer>(ioc, o, st);
    s->pair = shared;
    s->token = tokens[i].first;
    s->sender = true;
    s->peer_name = recv_names[i];
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
  std::printf("pairs %llu, window %llu, payload %llu B, %s\n",
              static_cast<unsigned long long>(o.pairs),
              static_cast<unsigned long long>(o.window),
              static_cast<unsigned long long>(o.payload),
              o.rate ? ("offered " + std::to_string(o.rate) + " msg/s").c_str()
                     : "unpaced");
  uint64_t errors = 0;
  double rate_without = 0;
  // One measured phase (after a second of warm-up) with the current
  // receipt setting; prints its results and returns delivered msg/s.
  auto phase = [&](const char* label) {
    ioc.run_for(std::chrono::seconds(1)); // warm-up
    st = stats{};
    st.send_receipts = label != nullptr && std::string{label} == "receipts on";
    ioc.run_for(std::chrono::milliseconds(200)); // pipelines settle
    st.measuring = true;
    auto cpu0 = self_cpu();
    auto srv0 = proc_cpu(o.server_pid);
    auto t0 = clock_type::now();
    ioc.run_for(std::chrono::seconds(o.duration_s));
    std::chrono::duration<double> dt = clock_type::now() - t0;
    st.measuring = false;
    auto cpu1 = self_cpu();
    auto srv1 = proc_cpu(o.server_pid);
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

namespace parley::bench {

namespace {

/// VmRSS of `pid` in KiB, or -1.
long rss_kib(int64_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

std::string login_device(const ws_options& o, const std::string& name,
                         int device) {
  auto body = http_post(o, "/v1/login",
                        R"({"username":")" + name
                          + R"(","password":"bench password","deviceName":"d)"
                          + std::to_string(device) + R"("})");
  std::smatch m;
  if (!std::regex_search(body, m, std::regex("\"token\":\"([^\"]+)\"")))
    throw std::runtime_error("login failed for " + name + ": " + body);
  return m[1].str();
}

} // namespace

int run_idle(const ws_options& o, uint64_t connections,
             const std::string& cmdline) {
  if (o.server_pid <= 0)
    throw std::runtime_error("--mode idle needs --server-pid");
  auto run_id = std::to_string(::getpid()) + "x"
                + std::to_string(std::random_device{}() % 100000);
  std::vector<std::string> tokens;
  for (uint64_t i = 0; tokens.size() < connections; ++i) {
    auto name = "bi" + run_id + "n" + std::to_string(i);
    http_post(o, "/v1/accounts",
              R"({"username":")" + name
                + R"(","password":"bench password"})");
    for (int d = 0; d < 8 && tokens.size() < connections; ++d)
      tokens.push_back(login_device(o, name, d));
  }
  auto before = rss_kib(o.server_pid);
  asio::io_context ioc;
  stats st;
  std::vector<std::shared_ptr<peer>> peers;
  uint64_t ready = 0;
  auto on_ready = [&] { ++ready; };
  for (auto& t : tokens) {
    auto p = std::make_shared<peer>(ioc, o, st);
    p->token = t;
    peers.push_back(p);
  }
  if (!connect_all(ioc, peers, ready, on_ready))
    return 1;
  ioc.run_for(std::chrono::seconds(2)); // let the server settle
  auto after = rss_kib(o.server_pid);
  auto count = peers.size();
  shut_down(ioc, peers);
  std::printf("command: %s\n", cmdline.c_str());
  std::printf("idle authenticated connections: %zu\n", count);
  std::printf("server RSS: %ld KiB before, %ld KiB after: %.1f KiB per "
              "connection (user space; the kernel's socket buffers, ~5 KB "
              "per idle loopback socket, are not in RSS)\n",
              before, after,
              double(after - before) / double(count));
  return 0;
}

} // namespace parley::bench
