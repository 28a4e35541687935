#include "ws_peer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <regex>
#include <stdexcept>

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_net.hpp"

namespace parley::bench {

using clock_type = std::chrono::steady_clock;

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

void peer::start(std::function<void()> on_ready) {
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

std::string peer::opts_host(const std::shared_ptr<peer>& p) {
  return p->opts.host;
}

void peer::write(std::string data) {
  // Framed here and handed to the socket at once. Through Beast, a frame
  // waited for the completion of the one before it, which comes a turn of
  // this (busy, single) thread's loop later: up to a millisecond of the
  // client's own queueing counted as the server's latency.
  unsigned char mask[4];
  auto key = ++mask_key * 0x9e3779b9u; // any key will do for a bench client
  std::memcpy(mask, &key, 4);
  char head[14];
  auto len = gateway::frame_header(head, true, data.size(), mask);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(data[i] ^ mask[i & 3]);
  auto& out = ws->next_layer();
  using put_result = gateway::coalescing_stream::put_result;
  if (out.put(head, len, data, SIZE_MAX) == put_result::flush)
    out.flush(); // this thread is the stream's
}

void peer::read() {
  read_frames(shared_from_this(), *ws, buf);
}

void peer::on_frame(const v1::ServerFrame& f) {
  if (f.has_welcome()) {
    if (sender && group_with != 0) {
      create_group();
    } else if (sender) {
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
  } else if (f.has_accepted() && sender && !ready && group_with != 0) {
    conv = f.accepted().conversation_id();
    if (!conv_fits || conv_fits(conv)) {
      ready = true;
      on_ready_();
    } else if (++group_tries < 200) {
      create_group(); // until one lands where the pair wants it
    } else {
      std::fprintf(stderr, "parley-bench: no group of 200 landed on the "
                           "wanted node\n");
    }
  } else if (f.has_accepted()) {
    --inflight;
    if (auto i = send_ns.find(f.request_id()); i != send_ns.end()) {
      if (s.measuring)
        s.accept_latency_us.push_back(
          static_cast<uint32_t>((now_ns() - i->second) / 1000));
      send_ns.erase(i);
    }
    if (s.measuring)
      ++s.accepted;
    pump();
  } else if (f.has_message()) {
    auto& p = f.message().payload();
    if (p.size() >= 8 && s.measuring) {
      int64_t sent;
      std::memcpy(&sent, p.data(), 8);
      auto now = now_ns();
      s.note_latency(now, static_cast<uint32_t>((now - sent) / 1000));
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
    if (!ready) // Hello or OpenDirect refused: say why
      std::fprintf(stderr, "parley-bench: %s refused: %s\n",
                   sender ? "open_direct" : "hello",
                   f.error().ShortDebugString().c_str());
    ++s.errors;
    if (sender && f.request_id() != 0) {
      --inflight;
      pump();
    }
  }
}

void peer::create_group() {
  v1::ClientFrame g;
  g.set_request_id(rid++);
  g.mutable_group_create()->set_name("bench pair");
  g.mutable_group_create()->add_user_ids(group_with);
  write(g.SerializeAsString());
}

void peer::send_receipts() {
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

void peer::pump() {
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
    send_ns[f.request_id()] = ts;
    ++inflight;
    if (s.measuring)
      ++s.sent;
    write(f.SerializeAsString());
  }
}

void shut_down(asio::io_context& ioc, std::vector<std::shared_ptr<peer>>& peers) {
  for (auto& p : peers) {
    p->stop = true;
    p->timer.cancel();
    beast::error_code ec;
    if (p->ws)
      p->ws->next_layer().socket().close(ec);
    else
      p->sock.close(ec);
  }
  ioc.restart();
  ioc.run_for(std::chrono::seconds(2));
  peers.clear();
  ioc.stop();
}

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

} // namespace parley::bench
