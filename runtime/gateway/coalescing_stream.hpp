#pragma once

// A TCP stream for Beast's WebSocket that writes several frames per system
// call. Each write is copied into a pending buffer and completes at once
// (posted, never inline) while one socket write at a time carries
// everything pending: a burst of frames queued for one session becomes one
// `sendmsg` instead of one per frame. Writes complete immediately only
// while the pending buffer is under `max_pending` bytes; past that, the
// write waits for the socket, so a slow reader still backs up into the
// session's bounded queue. Close frames pass through the same buffer, and
// teardown waits for it to drain, so nothing is reordered or cut off.
//
// Internal to server.cpp (header only because it is a template).

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace parley::gateway {

class coalescing_stream {
public:
  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;
  using error_code = boost::beast::error_code;

  explicit coalescing_stream(socket_type&& s, size_t max_pending = 256 * 1024)
    : st_(std::make_shared<state>(std::move(s), max_pending)) {
  }

  executor_type get_executor() noexcept {
    return st_->sock.get_executor();
  }

  /// For Beast's lowest-layer lookups (timeouts close the socket).
  socket_type& next_layer() noexcept {
    return st_->sock;
  }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& bufs, Handler&& h) {
    return st_->sock.async_read_some(bufs, std::forward<Handler>(h));
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& bufs, Handler&& h) {
    auto& st = *st_;
    size_t n = 0;
    if (!st.error) {
      for (auto it = boost::asio::buffer_sequence_begin(bufs);
           it != boost::asio::buffer_sequence_end(bufs); ++it) {
        boost::asio::const_buffer b = *it;
        st.pending.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      flush(st_);
    }
    if (st.error || st.pending.size() <= st.max_pending || !st.flushing) {
      boost::asio::post(get_executor(),
                        boost::beast::bind_front_handler(
                          std::forward<Handler>(h), st.error, n));
      return;
    }
    // Too much buffered: complete when the socket has taken it.
    auto hp = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(h));
    st.waiting = [hp, n](error_code ec) { (*hp)(ec, n); };
  }

  /// Runs `fn` once everything written so far has reached the socket (or
  /// failed).
  void when_drained(std::function<void(error_code)> fn) {
    auto& st = *st_;
    if (!st.flushing) {
      boost::asio::post(get_executor(), [fn = std::move(fn), ec = st.error] {
        fn(ec);
      });
      return;
    }
    st.drained.push_back(std::move(fn));
  }

private:
  struct state {
    state(socket_type&& s, size_t max) : sock(std::move(s)), max_pending(max) {
    }
    socket_type sock;
    size_t max_pending;
    std::string pending; ///< written by Beast, not yet handed to the socket
    std::string writing; ///< in the socket write under way
    bool flushing = false;
    error_code error; ///< sticky: the first failed socket write
    std::function<void(error_code)> waiting;
    std::vector<std::function<void(error_code)>> drained;
  };

  /// Starts a socket write of everything pending, unless one is under way.
  static void flush(const std::shared_ptr<state>& sp) {
    auto& st = *sp;
    if (st.flushing || st.pending.empty())
      return;
    st.flushing = true;
    st.writing.swap(st.pending);
    boost::asio::async_write(
      st.sock, boost::asio::buffer(st.writing),
      [sp](error_code ec, size_t) {
        auto& st = *sp;
        st.flushing = false;
        st.writing.clear();
        if (ec && !st.error)
          st.error = ec;
        if (!st.error)
          flush(sp);
        if (st.waiting && (st.error || st.pending.size() <= st.max_pending)) {
          auto w = std::move(st.waiting);
          st.waiting = nullptr;
          w(st.error);
        }
        if (!st.flushing) {
          auto fns = std::move(st.drained);
          st.drained.clear();
          for (auto& fn : fns)
            fn(st.error);
        }
      });
  }

  std::shared_ptr<state> st_;
};

/// Beast's teardown hooks (found by ADL): flush, then tear the socket down.
inline void teardown(boost::beast::role_type role, coalescing_stream& s,
                     boost::beast::error_code& ec) {
  boost::beast::websocket::teardown(role, s.next_layer(), ec);
}

template <class Handler>
void async_teardown(boost::beast::role_type role, coalescing_stream& s,
                    Handler&& h) {
  auto hp = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(h));
  s.when_drained([role, &s, hp](boost::beast::error_code) {
    boost::beast::websocket::async_teardown(role, s.next_layer(),
                                            std::move(*hp));
  });
}

} // namespace parley::gateway
