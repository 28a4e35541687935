// coalescing_stream on a real loopback socket: frames put from several
// threads at once (written straight to the socket or queued behind what the
// socket has not taken) arrive whole, each thread's in order, interleaved
// only at frame boundaries and with the I/O thread's own writes; the queue
// bound refuses once a reader stops reading; a shut stream refuses puts.

#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>

#include "runtime/gateway/coalescing_stream.hpp"

using namespace parley::gateway;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using put_result = coalescing_stream::put_result;

namespace {

struct socket_pair {
  asio::io_context ioc;
  coalescing_stream::socket_type server{ioc};
  coalescing_stream::socket_type client{ioc};

  socket_pair() {
    tcp::acceptor acc{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    client.connect(acc.local_endpoint());
    acc.accept(server);
  }
};

/// A coalescing stream on the server end of a socket pair, with an I/O
/// thread running its context (stopped and joined at the end).
struct running_stream {
  socket_pair sp;
  coalescing_stream out{std::move(sp.server)};
  asio::executor_work_guard<asio::io_context::executor_type> guard =
    asio::make_work_guard(sp.ioc);
  std::thread io{[this] { sp.ioc.run(); }};

  ~running_stream() {
    guard.reset();
    sp.ioc.stop();
    io.join();
  }
};

/// A test frame: 12 bytes of head (writer, number, body length), then the
/// body, filled with one letter per writer.
struct frame {
  uint32_t writer = 0;
  uint32_t number = 0;
  std::string body;
};

std::string head_of(uint32_t writer, uint32_t number, uint32_t len) {
  std::string h(12, '\0');
  std::memcpy(h.data(), &writer, 4);
  std::memcpy(h.data() + 4, &number, 4);
  std::memcpy(h.data() + 8, &len, 4);
  return h;
}

frame read_frame(coalescing_stream::socket_type& s) {
  char h[12];
  asio::read(s, asio::buffer(h));
  frame f;
  uint32_t len = 0;
  std::memcpy(&f.writer, h, 4);
  std::memcpy(&f.number, h + 4, 4);
  std::memcpy(&len, h + 8, 4);
  f.body.resize(len);
  asio::read(s, asio::buffer(f.body));
  return f;
}

/// Puts one frame; a `flush` answer is honoured as the gateway does, by
/// running flush on the I/O thread.
put_result put(coalescing_stream& out, asio::io_context& ioc, uint32_t writer,
               uint32_t number, size_t len, size_t max_frames = 1 << 20) {
  std::string body(len, static_cast<char>('a' + writer));
  auto head = head_of(writer, number, static_cast<uint32_t>(len));
  auto r = out.put(head.data(), head.size(), body, max_frames);
  if (r == put_result::flush)
    asio::post(ioc, [&out] { out.flush(); });
  return r;
}

} // namespace

TEST_CASE("frames put from four threads arrive whole and in each thread's "
          "order, with the I/O thread's writes between them") {
  running_stream rs;
  auto& sp = rs.sp;
  auto& out = rs.out;
  // A small send buffer: loopback's can grow to megabytes and would take
  // even the large frames whole, leaving the I/O thread's path untried.
  out.socket().set_option(asio::socket_base::send_buffer_size(64 * 1024));
  constexpr uint32_t writers = 4;
  constexpr uint32_t per_writer = 1500;
  // The direct path, taken for certain: nothing is queued yet, so a small
  // frame goes straight to the socket (writer 8, one frame). Under load the
  // threads below may find the stream busy all along.
  REQUIRE(put(out, sp.ioc, 8, 0, 10) == put_result::sent);
  std::atomic<size_t> behind{0};
  std::vector<std::thread> ts;
  for (uint32_t w = 0; w < writers; ++w)
    ts.emplace_back([&, w] {
      for (uint32_t n = 0; n < per_writer; ++n) {
        // Every 100th frame is large, so the socket takes it only in part
        // and the rest (and the frames behind it) go through the I/O thread.
        auto len = n % 100 == 7 ? 300'000 : 10 + n % 50;
        auto r = put(out, sp.ioc, w, n, len);
        REQUIRE((r == put_result::sent || r == put_result::queued
                 || r == put_result::flush));
        if (r != put_result::sent)
          ++behind;
      }
    });
  // Beast's path (the I/O thread's writes): frames of writer 9.
  constexpr uint32_t io_frames = 50;
  asio::post(sp.ioc, [&] {
    for (uint32_t n = 0; n < io_frames; ++n) {
      auto bytes = std::make_shared<std::string>(head_of(9, n, 3) + "jjj");
      out.async_write_some(asio::buffer(*bytes),
                           [bytes](boost::system::error_code ec, size_t k) {
                             REQUIRE(!ec);
                             REQUIRE(k == bytes->size());
                           });
    }
  });
  std::vector<uint32_t> next(10, 0);
  for (uint32_t i = 0; i < 1 + writers * per_writer + io_frames; ++i) {
    auto f = read_frame(sp.client);
    REQUIRE(f.writer < 10);
    REQUIRE(f.number == next[f.writer]); // in order, none lost or doubled
    ++next[f.writer];
    auto fill = f.writer == 9 ? 'j' : static_cast<char>('a' + f.writer);
    REQUIRE(f.body == std::string(f.body.size(), fill)); // not interleaved
  }
  for (uint32_t w = 0; w < writers; ++w)
    CHECK(next[w] == per_writer);
  CHECK(next[8] == 1);
  CHECK(next[9] == io_frames);
  for (auto& t : ts)
    t.join(); // every count is in
  CHECK(behind > 0); // the I/O thread's path was taken too
}

TEST_CASE("a reader that stops reading fills the bounded queue: put refuses "
          "with full once, then closed") {
  running_stream rs;
  auto& sp = rs.sp;
  auto& out = rs.out;
  constexpr size_t bound = 16;
  put_result r = put_result::sent;
  size_t accepted = 0;
  // The kernel's buffers take some megabytes first; bounded in count.
  for (uint32_t n = 0; n < 100'000; ++n) {
    r = put(out, sp.ioc, 0, n, 64 * 1024, bound);
    if (r == put_result::full || r == put_result::closed)
      break;
    ++accepted;
  }
  CHECK(r == put_result::full);
  CHECK(put(out, sp.ioc, 0, 0, 10, bound) == put_result::closed);
  // What was accepted is still delivered, whole and in order.
  for (uint32_t n = 0; n < accepted; ++n) {
    auto f = read_frame(sp.client);
    REQUIRE(f.number == n);
    REQUIRE(f.body.size() == 64 * 1024);
  }
}

TEST_CASE("a shut stream, or one whose socket Beast closed, refuses puts") {
  socket_pair sp;
  coalescing_stream out{std::move(sp.server)};
  CHECK(put(out, sp.ioc, 0, 0, 10) == put_result::sent);
  out.shut();
  CHECK(put(out, sp.ioc, 0, 1, 10) == put_result::closed);
  CHECK(read_frame(sp.client).number == 0);

  socket_pair sp2;
  coalescing_stream out2{std::move(sp2.server)};
  beast_close_socket(out2); // what Beast's timeout does
  CHECK(put(out2, sp2.ioc, 0, 0, 10) == put_result::closed);
}
