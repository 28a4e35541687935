#pragma once

// The WebSocket client of parley-bench's ws and idle modes: one thread runs
// every peer (a sender or a recipient) over plain sockets, with frames that
// are queued together leaving in one system call.

#include <algorithm>
#include <utility> // Asio in Boost 1.74 needs it first

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "parley/v1/wire.pb.h"
#include "runtime/gateway/coalescing_stream.hpp"
#include "ws_mode.hpp"

namespace parley::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// Reads server frames from `ws` one after another and hands each that
/// parses to `self->on_frame`, until the stream fails. `self` owns `ws` and
/// `buf` (kept alive by the pending read). For the ws and group modes.
template <class Self, class Stream>
void read_frames(std::shared_ptr<Self> self, Stream& ws,
                 beast::flat_buffer& buf) {
  ws.async_read(buf, [self, &ws, &buf](beast::error_code ec, size_t) {
    if (ec)
      return;
    v1::ServerFrame f;
    auto data = buf.data();
    if (f.ParseFromArray(data.data(), static_cast<int>(data.size())))
      self->on_frame(f);
    buf.consume(buf.size());
    read_frames(self, ws, buf);
  });
}

/// Signs `name` up and logs one device in; returns its token.
std::string login(const ws_options& o, const std::string& name);

/// POST `body` (JSON) to `target` on the server of `o`; returns the body.
std::string http_post(const ws_options& o, const std::string& target,
                      const std::string& body);

struct stats {
  uint64_t sent = 0, accepted = 0, delivered = 0, errors = 0, receipts = 0;
  std::vector<uint32_t> latency_us;
  std::vector<uint32_t> accept_latency_us; ///< Send written -> Accepted read
  std::vector<uint32_t> receipt_latency_us; ///< Read sent -> sender told
  bool measuring = false;
  bool send_receipts = false; ///< recipients acknowledge and read
  /// --timeline: per 100 ms of the phase (by arrival), the worst
  /// send->deliver latency and how many took over 10 ms.
  int64_t phase_start_ns = 0;
  std::vector<uint32_t> slot_max_us;
  std::vector<uint32_t> slot_slow;

  void note_latency(int64_t arrived_ns, uint32_t us) {
    latency_us.push_back(us);
    auto slot = static_cast<size_t>((arrived_ns - phase_start_ns) / 100'000'000);
    if (slot >= slot_max_us.size()) {
      slot_max_us.resize(slot + 1);
      slot_slow.resize(slot + 1);
    }
    slot_max_us[slot] = std::max(slot_max_us[slot], us);
    slot_slow[slot] += us > 10'000;
  }
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
  /// Until connected, then moved into `ws`.
  gateway::coalescing_stream::socket_type sock;
  std::unique_ptr<ws_stream> ws;
  asio::steady_timer timer;
  const ws_options& opts;
  stats& s;
  beast::flat_buffer buf;
  uint32_t mask_key = 0;
  std::string token;
  std::string peer_name;       ///< senders: whom to open_direct
  /// Senders: if set, a group of two with this user instead of a direct
  /// conversation, created again until `conv_fits` takes its id.
  uint64_t group_with = 0;
  std::function<bool(uint64_t)> conv_fits;
  uint64_t group_tries = 0;
  void create_group();
  bool sender = false;
  bool ready = false;
  uint64_t conv = 0;
  uint32_t rid = 1;
  uint64_t inflight = 0, counter = 0;
  /// Send times by request id, for the accepted latency.
  std::unordered_map<uint32_t, int64_t> send_ns;
  double interval_ns = 0;      ///< pacing per sender, 0 = none
  int64_t next_send_ns = 0;
  std::string padding;
  bool stop = false;
  std::shared_ptr<pair_state> pair;

  void start(std::function<void()> on_ready);

  static std::string opts_host(const std::shared_ptr<peer>& p);

  std::function<void()> on_ready_;

  /// Sends one binary frame (masked, as a client's must be).
  void write(std::string data);

  void read();

  void on_frame(const v1::ServerFrame& f);

  uint64_t received = 0, acked = 0; ///< recipients: highest seen, sent
  bool receipt_timer_armed = false;

  void send_receipts();

  /// Sends while the window and the pace allow.
  void pump();};

/// Closes every socket and lets the cancelled handlers finish, so that no
/// stream outlives its io_context.
void shut_down(asio::io_context& ioc, std::vector<std::shared_ptr<peer>>& peers);

/// Connects and says Hello on every peer, 500 at a time so the listen
/// backlog never overflows; false (after closing them) if not all are
/// ready within 120 s.
bool connect_all(asio::io_context& ioc,
                 std::vector<std::shared_ptr<peer>>& peers, uint64_t& ready,
                 const std::function<void()>& on_ready);

} // namespace parley::bench
