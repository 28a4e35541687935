#include "runtime/cluster/http_call.hpp"

#include "runtime/cluster/etcd_json.hpp"
#include "runtime/cluster/http_errors.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>

namespace parley::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

cp_result<http_answer> exchange(const endpoint& to, http::verb verb,
                                const std::string& target,
                                const std::string& body,
                                std::chrono::milliseconds deadline) {
  auto ep = resolve_numeric(to);
  if (!ep)
    return ep.error();
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, to.host + ":" + std::to_string(to.port));
  req.set(http::field::connection, "close");
  if (verb == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(etcd_json::max_answer_bytes);
  std::optional<cp_error> err;
  stream.expires_after(deadline);
  stream.async_connect(ep.value(), [&](beast::error_code ec) {
    if (ec) {
      err = error_of_io(ec, "connect");
      return;
    }
    http::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) {
        err = error_of_io(ec, "write");
        return;
      }
      http::async_read(stream, buf, parser, [&](beast::error_code ec, size_t) {
        if (ec)
          err = error_of_io(ec, "read");
      });
    });
  });
  ioc.run();
  if (err)
    return *err;
  auto& res = parser.get();
  return http_answer{res.result_int(), std::move(res.body())};
}

} // namespace

cp_result<http_answer> http_post(const endpoint& to, const std::string& target,
                                 const std::string& body,
                                 std::chrono::milliseconds deadline) {
  return exchange(to, http::verb::post, target, body, deadline);
}

cp_result<http_answer> http_get(const endpoint& to, const std::string& target,
                                std::chrono::milliseconds deadline) {
  return exchange(to, http::verb::get, target, {}, deadline);
}

} // namespace parley::cluster
