// A watch over etcd's streaming /v3/watch: one thread per watch, reading
// the chunked answer line by line (one JSON object per line). After a
// dropped connection it reconnects with start_revision = last seen + 1.

#include "runtime/cluster/etcd_client.hpp"
#include "runtime/cluster/etcd_json.hpp"
#include "runtime/cluster/http_errors.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace parley::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

class etcd_watch final : public watch_handle {
public:
  etcd_watch(etcd_options opts, std::string prefix, int64_t start,
             watch_callback cb, watch_failure_callback on_failure)
    : opts_(std::move(opts)), prefix_(std::move(prefix)), next_(start),
      cb_(std::move(cb)), on_failure_(std::move(on_failure)) {
    thread_ = std::thread([this] { loop(); });
  }

  ~etcd_watch() override {
    cancel();
  }

  void cancel() override {
    {
      std::lock_guard<std::mutex> guard(mtx_);
      stopping_ = true;
      if (current_ != nullptr)
        current_->stop(); // thread-safe: the running run() returns
    }
    cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
      thread_.join();
  }

  int64_t last_revision() const override {
    return last_.load();
  }

private:
  // Stops for good (on this thread) and says why, unless cancelled.
  void give_up(const cp_error& why) {
    {
      std::lock_guard<std::mutex> guard(mtx_);
      if (stopping_)
        return;
      stopping_ = true;
    }
    if (on_failure_)
      on_failure_(why);
  }

  bool stopping() {
    std::lock_guard<std::mutex> guard(mtx_);
    return stopping_;
  }

  void loop() {
    auto backoff = std::chrono::milliseconds(50);
    while (!stopping()) {
      bool got_answer = stream_once();
      if (got_answer)
        backoff = std::chrono::milliseconds(50);
      std::unique_lock<std::mutex> lock(mtx_);
      cv_.wait_for(lock, backoff, [this] { return stopping_; });
      backoff = std::min(backoff * 2, opts_.watch_max_backoff);
    }
  }

  // One connection: returns whether etcd answered (created the watch).
  bool stream_once() {
    auto ep = resolve_numeric(opts_.at);
    if (!ep)
      return false;
    // A fresh context per connection: a stopped one may hold handlers that
    // refer to this frame; they die with it, never run.
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    const int64_t conn_start = next_;
    http::request<http::string_body> req{http::verb::post, "/v3/watch", 11};
    req.set(http::field::host, opts_.at.host);
    req.set(http::field::content_type, "application/json");
    req.body() = etcd_json::watch_body(
      prefix_, conn_start, opts_.watch_idle_deadline.count() > 0);
    req.prepare_payload();
    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none); // an endless stream
    char chunk[8192];
    std::string line;
    bool created = false;
    bool failed = false;

    std::function<void()> read_more = [&] {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      http::async_read_some(stream, buf, parser,
                            [&](beast::error_code ec, size_t) {
        if (ec == http::error::need_buffer)
          ec = {};
        if (ec)
          return;
        line.append(chunk, sizeof chunk - parser.get().body().size);
        if (!take_lines(line, created, conn_start) || parser.is_done())
          return;
        if (created && opts_.watch_idle_deadline.count() > 0)
          stream.expires_after(opts_.watch_idle_deadline);
        else if (created)
          stream.expires_never();
        read_more();
      });
    };
    stream.expires_after(opts_.watch_connect_deadline);
    stream.async_connect(ep.value(), [&](beast::error_code ec) {
      if (ec)
        return;
      boost::system::error_code ignored;
      stream.socket().set_option(asio::socket_base::keep_alive(true),
                                 ignored);
      http::async_write(stream, req, [&](beast::error_code ec, size_t) {
        if (ec)
          return;
        http::async_read_header(stream, buf, parser,
                                [&](beast::error_code ec, size_t) {
          if (ec || parser.get().result_int() != 200) {
            failed = true;
            return;
          }
          read_more();
        });
      });
    });
    {
      std::lock_guard<std::mutex> guard(mtx_);
      if (stopping_)
        return false;
      current_ = &ioc;
    }
    ioc.run();
    std::lock_guard<std::mutex> guard(mtx_);
    current_ = nullptr;
    return created && !failed;
  }

  // Handles each whole line in `line`; false to drop the connection
  // (malformed or oversized line, canceled or compacted watch).
  bool take_lines(std::string& line, bool& created, int64_t conn_start) {
    size_t start = 0;
    for (size_t nl; (nl = line.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      std::string_view one(line.data() + start, nl - start);
      if (one.find_first_not_of(" \r\t") == std::string_view::npos)
        continue;
      auto msg = etcd_json::parse_watch_line(one);
      if (msg && msg->compact_revision > 0) {
        give_up({cp_errc::compacted,
                 "watch start revision " + std::to_string(conn_start)
                   + " is compacted (oldest kept: "
                   + std::to_string(msg->compact_revision) + ")"});
        return false;
      }
      if (!msg || msg->canceled)
        return false;
      if (msg->created) {
        created = true;
        if (next_ == 0) // "from now": resume after what etcd had then
          next_ = msg->revision + 1;
      }
      // Events of one revision (a transaction) share its mod_revision.
      for (auto& ev : msg->events) {
        if (ev.mod_revision < conn_start || stopping())
          continue; // seen before a reconnect, or cancelled
        cb_(ev);
        last_.store(ev.mod_revision);
        next_ = std::max(next_, ev.mod_revision + 1);
      }
    }
    line.erase(0, start);
    return line.size() <= etcd_json::max_answer_bytes;
  }

  etcd_options opts_;
  std::string prefix_;
  int64_t next_; ///< the revision to (re)start from; 0 = now
  watch_callback cb_;
  watch_failure_callback on_failure_;
  std::atomic<int64_t> last_{0};
  std::mutex mtx_;
  asio::io_context* current_ = nullptr; ///< the connection's, under mtx_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace

std::unique_ptr<watch_handle> start_etcd_watch(const etcd_options& opts,
                                               const std::string& prefix,
                                               int64_t start_revision,
                                               watch_callback on_event,
                                               watch_failure_callback on_failure) {
  return std::make_unique<etcd_watch>(opts, prefix, start_revision,
                                      std::move(on_event),
                                      std::move(on_failure));
}

} // namespace parley::cluster
