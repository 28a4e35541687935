#include "sync_mode.hpp"

#include <utility> // Asio in Boost 1.74 needs it first

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_net.hpp"
#include "parley/v1/wire.pb.h"
#include "ws_mode.hpp"

namespace parley::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// One device on a blocking WebSocket: the bench waits for each answer, so
/// a page's time is the server's (plus one loopback round trip). Every
/// read gives up after 30 s (SO_RCVTIMEO), so a stuck server ends the run.
struct client {
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buf;
  uint32_t rid = 1;

  void connect(const sync_options& o, const std::string& token) {
    ws.next_layer().connect(
      tcp::endpoint{asio::ip::make_address(o.host), o.port});
    ws.next_layer().set_option(tcp::no_delay(true));
    timeval tv{30, 0};
    ::setsockopt(ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO,
                 &tv, sizeof tv);
    ws.binary(true);
    ws.read_message_max(64 << 20);
    ws.handshake(o.host, "/v1/ws");
    v1::ClientFrame f;
    auto* h = f.mutable_hello();
    h->set_min_version(1);
    h->set_max_version(1);
    h->set_auth_token(token);
    send(f);
    for (;;) {
      auto r = read();
      if (r.has_welcome())
        return;
      if (r.has_error())
        throw std::runtime_error("hello refused: " + r.error().message());
    }
  }

  uint32_t send(v1::ClientFrame& f) {
    f.set_request_id(rid++);
    ws.write(asio::buffer(f.SerializeAsString()));
    return f.request_id();
  }

  v1::ServerFrame read() {
    buf.clear();
    ws.read(buf);
    v1::ServerFrame f;
    auto data = buf.data();
    if (!f.ParseFromArray(data.data(), static_cast<int>(data.size())))
      throw std::runtime_error("unparsable server frame");
    return f;
  }

  /// Reads until the answer to `id` (pushes and other answers skipped).
  v1::ServerFrame answer(uint32_t id) {
    for (;;) {
      auto f = read();
      if (f.request_id() != id)
        continue;
      if (f.has_error())
        throw std::runtime_error("request " + std::to_string(id)
                                 + " failed: " + f.error().message());
      return f;
    }
  }
};

/// Tells perf stat (through its control FIFO) to count or stop.
void perf_say(const sync_options& o, const char* what) {
  if (o.perf_ctl.empty())
    return;
  {
    std::ofstream ctl(o.perf_ctl);
    ctl << what << '\n';
  }
  if (!o.perf_ack.empty()) {
    std::ifstream ack(o.perf_ack);
    std::string line;
    std::getline(ack, line);
  }
}

/// Sends `per` messages into each of `convs`, `window` in flight.
void fill(client& c, const std::vector<uint64_t>& convs, uint64_t per,
          size_t payload) {
  constexpr uint64_t window = 64;
  uint64_t total = convs.size() * per, sent = 0, done = 0, errors = 0;
  std::string body(std::max<size_t>(payload, 1), 'x');
  while (done < total) {
    while (sent < total && sent - done < window) {
      v1::ClientFrame f;
      auto* s = f.mutable_send();
      // Round by round over the conversations: message i of each, then i+1.
      s->set_conversation_id(convs[sent % convs.size()]);
      s->set_client_message_id("s" + std::to_string(sent));
      s->set_payload(body);
      c.send(f);
      ++sent;
    }
    auto f = c.read();
    if (f.has_accepted()) {
      ++done;
    } else if (f.has_error() && f.request_id() != 0) {
      ++done;
      if (++errors == 1)
        std::fprintf(stderr, "parley-bench: send failed: %s\n",
                     f.error().message().c_str());
    }
  }
  if (errors > 0)
    throw std::runtime_error(std::to_string(errors) + " sends failed");
}

struct round_result {
  uint32_t first_us = 0, full_us = 0;
  uint64_t pages = 0, messages = 0, inbox = 0, bytes = 0;
};

round_result sync_once(client& c, const sync_options& o,
                       const std::vector<uint64_t>& convs) {
  round_result r;
  v1::ClientFrame f;
  auto* s = f.mutable_sync();
  s->set_page_size(static_cast<uint32_t>(o.page_size));
  if (!o.fresh)
    for (auto conv : convs) {
      auto* cur = s->add_cursors();
      cur->set_conversation_id(conv);
      cur->set_after_sequence(0);
    }
  auto t0 = now_ns();
  for (;;) {
    auto page = c.answer(c.send(f));
    auto& p = page.sync_page();
    if (r.pages++ == 0)
      r.first_us = static_cast<uint32_t>((now_ns() - t0) / 1000);
    r.messages += static_cast<uint64_t>(p.messages_size());
    r.inbox += static_cast<uint64_t>(p.inbox_size());
    r.bytes += page.ByteSizeLong();
    if (p.continuation().empty() || o.first_page_only)
      break;
    f.Clear();
    f.mutable_sync()->set_continuation(p.continuation());
  }
  r.full_us = static_cast<uint32_t>((now_ns() - t0) / 1000);
  return r;
}

} // namespace

int run_sync(const sync_options& o, const std::string& cmdline) {
  auto t_start = now_ns();
  auto prefix = "sy" + std::to_string(::getpid()) + "x"
                + std::to_string(now_ns() % 1000000);
  std::vector<std::string> names{prefix + "u"};
  for (uint64_t i = 0; i < o.conversations; ++i)
    names.push_back(prefix + "p" + std::to_string(i));
  register_all(o.host, o.port, names);
  // Two devices of the user: one writes the history, one syncs.
  auto tokens = login_all(o.host, o.port, {names[0], names[0]});

  client writer;
  writer.connect(o, tokens[0]);
  std::vector<uint64_t> convs;
  {
    std::vector<uint32_t> ids;
    for (uint64_t i = 0; i < o.conversations; ++i) {
      v1::ClientFrame f;
      f.mutable_open_direct()->set_username(names[i + 1]);
      ids.push_back(writer.send(f));
    }
    // Answers may come in any order.
    std::map<uint32_t, uint64_t> opened;
    while (opened.size() < ids.size()) {
      auto f = writer.read();
      if (f.has_direct_opened())
        opened[f.request_id()] = f.direct_opened().conversation_id();
      else if (f.has_error())
        throw std::runtime_error("open_direct failed: "
                                 + f.error().message());
    }
    for (auto id : ids)
      convs.push_back(opened.at(id));
  }
  fill(writer, convs, o.messages, o.payload);
  double setup_s = (now_ns() - t_start) / 1e9;

  client reader;
  reader.connect(o, tokens[1]);
  // One untimed round: the first sync after login (the current design
  // starts the user's actor here) and warm caches.
  auto cold = sync_once(reader, o, convs);
  uint64_t expected = o.conversations * o.messages;
  if (!o.fresh && !o.first_page_only && cold.messages != expected)
    throw std::runtime_error("sync returned " + std::to_string(cold.messages)
                             + " messages, expected "
                             + std::to_string(expected));

  std::vector<uint32_t> first, full;
  auto cpu0 = o.server_pid ? proc_cpu(o.server_pid) : -1.0;
  auto limit = t_start + int64_t(o.time_limit_s) * 1'000'000'000;
  perf_say(o, "enable");
  auto t0 = now_ns();
  round_result last;
  for (uint64_t k = 0; k < o.repeat && now_ns() < limit; ++k) {
    last = sync_once(reader, o, convs);
    if (last.messages != cold.messages || last.pages != cold.pages)
      throw std::runtime_error("a sync's messages or pages changed between "
                               "rounds");
    first.push_back(last.first_us);
    full.push_back(last.full_us);
  }
  double dt = (now_ns() - t0) / 1e9;
  perf_say(o, "disable");
  auto cpu1 = o.server_pid ? proc_cpu(o.server_pid) : -1.0;

  std::printf("command: %s\n", cmdline.c_str());
  std::printf("setup: %llu direct conversations x %llu messages of %llu "
              "bytes in %.1f s\n",
              static_cast<unsigned long long>(o.conversations),
              static_cast<unsigned long long>(o.messages),
              static_cast<unsigned long long>(o.payload), setup_s);
  std::printf("each sync (%s%s, page size %llu): %llu pages, %llu messages, "
              "%llu inbox entries, %llu bytes\n",
              o.fresh ? "no cursors" : "every conversation from 0",
              o.first_page_only ? ", first page only" : "",
              static_cast<unsigned long long>(o.page_size),
              static_cast<unsigned long long>(cold.pages),
              static_cast<unsigned long long>(cold.messages),
              static_cast<unsigned long long>(cold.inbox),
              static_cast<unsigned long long>(cold.bytes));
  std::printf("cold (first sync after login, untimed round): first page %u "
              "us, full %u us\n",
              cold.first_us, cold.full_us);
  auto n = first.size();
  std::printf("first page: p50 %.0f us, p99 %.0f us, min %.0f us (%zu "
              "syncs)\n",
              percentile(first, 0.5), percentile(first, 0.99),
              percentile(first, 0.0), n);
  std::printf("full sync: p50 %.0f us, p99 %.0f us, min %.0f us; %.1f "
              "syncs/s\n",
              percentile(full, 0.5), percentile(full, 0.99),
              percentile(full, 0.0), n / dt);
  if (cpu0 >= 0 && cpu1 >= 0 && n > 0)
    std::printf("server CPU: %.2f ms per sync (%.2f s over %zu)\n",
                (cpu1 - cpu0) * 1e3 / n, cpu1 - cpu0, n);
  return n == o.repeat ? 0 : 1;
}

} // namespace parley::bench
