#pragma once

// A TCP stream under Beast's WebSocket that writes several frames per system
// call, and takes whole frames from any thread.
//
// Two ways in, one byte queue out:
// - `async_write_some` (Beast's writes, on the I/O thread): the bytes join
//   the pending buffer and the write completes at once (posted, never
//   inline) while one socket write at a time carries everything pending; a
//   burst of frames becomes one `sendmsg`. Past `max_pending` bytes the
//   write completes only when the socket has taken enough, so a slow peer
//   still backs up into the caller.
// - `put` (whole frames the caller framed itself, from any thread): when
//   nothing is queued the frame goes to the socket right there, with a
//   non-blocking `sendmsg` on the calling thread and no hand-off to the I/O
//   thread; otherwise, or for what the socket did not take, it joins the
//   pending buffer and the caller arranges one `flush` on the I/O thread.
//   The queue is bounded in frames: past the bound `put` answers `full`.
//
// Bytes leave in the order they were queued, whichever way they came, and
// frames never interleave (each is appended whole under the lock). Close
// frames pass through the same buffer, and teardown waits for it to drain,
// so nothing is reordered or cut off. Once the stream is shut (teardown, a
// timeout closing the socket, or `shut`), `put` refuses: a frame is never
// written to a descriptor the socket no longer owns.
//
// Internal to the gateway and the bench client (header only because of the
// templates).

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace parley::gateway {

class coalescing_stream {
public:
  /// Bound to its io_context's own executor type rather than asio's
  /// type-erased default: every socket operation copies its executor, and
  /// the erased one cost ~1 % of the server and 2-3 % of the bench client.
  /// Callers make their sockets of this type from the start (the server's
  /// acceptor and HTTP stream, the bench's connect).
  using socket_type =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp,
                                     boost::asio::io_context::executor_type>;
  using executor_type = socket_type::executor_type;
  using error_code = boost::beast::error_code;

  enum class put_result {
    sent,   ///< on the socket already
    queued, ///< behind other bytes; a flush is under way or already arranged
    flush,  ///< queued, and the caller must run `flush` on the I/O thread
    full,   ///< refused: `max_frames` frames are queued (the stream is shut)
    closed, ///< refused: the stream is shut or failed
  };

  explicit coalescing_stream(socket_type&& s, size_t max_pending = 256 * 1024)
    : st_(std::make_shared<state>(std::move(s), max_pending)) {
  }

  executor_type get_executor() noexcept {
    return st_->sock.get_executor();
  }

  /// The socket, for connecting and teardown. (Deliberately not called
  /// `next_layer`: Beast's timeout then closes the socket through
  /// `beast_close_socket` below, which shuts the stream first.)
  socket_type& socket() noexcept {
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
    bool start = false;
    bool wait = false;
    error_code ec;
    {
      std::lock_guard<std::mutex> guard{st.mtx};
      ec = st.error;
      if (!ec) {
        for (auto it = boost::asio::buffer_sequence_begin(bufs);
             it != boost::asio::buffer_sequence_end(bufs); ++it) {
          boost::asio::const_buffer b = *it;
          st.pending.append(static_cast<const char*>(b.data()), b.size());
          n += b.size();
        }
        ++st.pending_frames;
        start = !st.busy;
        st.busy = true;
        wait = st.pending.size() > st.max_pending;
      }
    }
    if (start)
      write_pending(st_);
    if (!wait) {
      boost::asio::post(get_executor(), boost::beast::bind_front_handler(
                                          std::forward<Handler>(h), ec, n));
      return;
    }
    // Too much buffered: complete when the socket has taken it.
    auto hp = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(h));
    st.waiting = [hp, n](error_code ec) { (*hp)(ec, n); };
  }

  /// Queues one whole frame, `head` then `body`, from any thread: onto the
  /// socket now if nothing is queued ahead of it.
  put_result put(const char* head, size_t head_len, const std::string& body,
                 size_t max_frames) {
    auto& st = *st_;
    std::lock_guard<std::mutex> guard{st.mtx};
    if (st.shut || st.error)
      return put_result::closed;
    if (st.pending_frames + st.writing_frames >= max_frames) {
      st.shut = true;
      return put_result::full;
    }
    size_t sent = 0;
    if (!st.busy) {
      iovec iov[2] = {{const_cast<char*>(head), head_len},
                      {const_cast<char*>(body.data()), body.size()}};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = 2;
      auto n = ::sendmsg(st.sock.native_handle(), &msg,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n == static_cast<ssize_t>(head_len + body.size()))
        return put_result::sent;
      if (n > 0)
        sent = static_cast<size_t>(n);
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        st.error = error_code{errno, boost::system::system_category()};
        return put_result::closed;
      }
    }
    if (sent < head_len)
      st.pending.append(head + sent, head_len - sent);
    sent = sent > head_len ? sent - head_len : 0;
    st.pending.append(body, sent, std::string::npos);
    ++st.pending_frames;
    if (st.busy)
      return put_result::queued;
    st.busy = true;
    return put_result::flush;
  }

  /// On the I/O thread, after `put` answered `flush`: writes what is queued.
  void flush() {
    write_pending(st_);
  }

  /// No more `put`s: for closing. Beast's own writes (the close frame)
  /// still go through.
  void shut() {
    std::lock_guard<std::mutex> guard{st_->mtx};
    st_->shut = true;
  }

  /// Runs `fn` once everything written so far has reached the socket (or
  /// failed).
  void when_drained(std::function<void(error_code)> fn) {
    auto& st = *st_;
    error_code ec;
    {
      std::lock_guard<std::mutex> guard{st.mtx};
      if (st.busy) {
        st.drained.push_back(std::move(fn));
        return;
      }
      ec = st.error;
    }
    boost::asio::post(get_executor(), [fn = std::move(fn), ec] { fn(ec); });
  }

  /// Beast closes the lowest layer on a timeout: shut first, so no `put`
  /// on another thread can reach a descriptor number that may be reused.
  friend void beast_close_socket(coalescing_stream& s) {
    s.shut();
    error_code ec;
    s.st_->sock.close(ec);
  }

private:
  struct state {
    state(socket_type&& s, size_t max) : sock(std::move(s)), max_pending(max) {
    }
    socket_type sock;
    size_t max_pending;
    std::mutex mtx; ///< guards the fields below except `writing`, `waiting`
    std::string pending; ///< queued, not yet handed to the socket
    size_t pending_frames = 0;
    size_t writing_frames = 0;
    /// A flush is arranged or a socket write is under way: the I/O thread
    /// owns the hand-off of `pending`, and `put` must not write directly.
    bool busy = false;
    bool shut = false;
    error_code error; ///< sticky: the first failed socket write
    std::vector<std::function<void(error_code)>> drained;
    std::string writing; ///< in the socket write under way (I/O thread)
    std::function<void(error_code)> waiting; ///< I/O thread
  };

  /// On the I/O thread: writes everything pending, until nothing is.
  static void write_pending(const std::shared_ptr<state>& sp) {
    auto& st = *sp;
    std::vector<std::function<void(error_code)>> done;
    error_code ec;
    {
      std::lock_guard<std::mutex> guard{st.mtx};
      st.writing_frames = 0;
      ec = st.error;
      if (st.pending.empty() || st.error) {
        st.busy = false;
        st.pending.clear();
        st.pending_frames = 0;
        done.swap(st.drained);
      } else {
        st.writing.swap(st.pending);
        st.writing_frames = st.pending_frames;
        st.pending_frames = 0;
      }
    }
    // A Beast write held back for room: the previous write has finished.
    if (st.waiting) {
      auto w = std::move(st.waiting);
      st.waiting = nullptr;
      w(ec);
    }
    for (auto& fn : done)
      fn(ec);
    if (st.writing.empty())
      return;
    boost::asio::async_write(st.sock, boost::asio::buffer(st.writing),
                             [sp](error_code ec, size_t) {
                               auto& st = *sp;
                               st.writing.clear();
                               if (ec) {
                                 std::lock_guard<std::mutex> guard{st.mtx};
                                 if (!st.error)
                                   st.error = ec;
                               }
                               write_pending(sp);
                             });
  }

  std::shared_ptr<state> st_;
};

/// Writes the header of one unfragmented WebSocket frame (FIN set, no
/// extensions) into `out`, at most 14 bytes: binary or text, `n` payload
/// bytes, and the masking key `mask` if not null (a client's frames are
/// masked: the caller XORs the payload with it). Returns its length. For
/// callers of `put`, which frame their own messages.
inline size_t frame_header(char* out, bool binary, size_t n,
                           const unsigned char* mask = nullptr) {
  char masked = mask ? static_cast<char>(0x80) : 0;
  size_t len = 0;
  out[len++] = static_cast<char>(0x80 | (binary ? 0x2 : 0x1));
  if (n < 126) {
    out[len++] = static_cast<char>(masked | static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    out[len++] = static_cast<char>(masked | 126);
    out[len++] = static_cast<char>(n >> 8);
    out[len++] = static_cast<char>(n & 0xFF);
  } else {
    out[len++] = static_cast<char>(masked | 127);
    for (int i = 0; i < 8; ++i)
      out[len++] = static_cast<char>((uint64_t{n} >> (56 - 8 * i)) & 0xFF);
  }
  if (mask)
    for (int i = 0; i < 4; ++i)
      out[len++] = static_cast<char>(mask[i]);
  return len;
}

/// Beast's teardown hooks (found by ADL): shut, flush, then tear the socket
/// down.
inline void teardown(boost::beast::role_type role, coalescing_stream& s,
                     boost::beast::error_code& ec) {
  s.shut();
  boost::beast::websocket::teardown(role, s.socket(), ec);
}

template <class Handler>
void async_teardown(boost::beast::role_type role, coalescing_stream& s,
                    Handler&& h) {
  s.shut();
  auto hp = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(h));
  s.when_drained([role, &s, hp](boost::beast::error_code) {
    boost::beast::websocket::async_teardown(role, s.socket(), std::move(*hp));
  });
}

} // namespace parley::gateway
