#include "tools/parleyctl/http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace parley::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string endpoint::text() const {
  return host.find(':') != std::string::npos ? "[" + host + "]:" + port
                                             : host + ":" + port;
}

bool parse_endpoint(const std::string& text, endpoint& out) {
  std::string host = text, port = "8090";
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos)
      return false;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':')
        return false;
      port = text.substr(close + 2);
    }
  } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
    if (text.find(':') != colon) { // a bare IPv6 address
      host = text;
    } else {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
  }
  if (host.empty() || port.empty() || port.size() > 5
      || port.find_first_not_of("0123456789") != std::string::npos
      || std::stoul(port) == 0 || std::stoul(port) > 65535)
    return false;
  out.host = host;
  out.port = port;
  return true;
}

std::variant<http_answer, http_failure>
http_call(const endpoint& to, const std::string& method,
          const std::string& target, const std::string& body,
          const std::string& token, std::chrono::milliseconds timeout,
          const std::atomic<bool>* stop) {
  asio::io_context ioc;
  tcp::resolver resolver{ioc};
  beast::tcp_stream stream{ioc};
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method),
                                         target, 11};
  req.set(bhttp::field::host, to.text());
  req.set(bhttp::field::user_agent, "parleyctl");
  req.set(bhttp::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  beast::error_code failed;
  bool done = false;
  auto fail = [&](beast::error_code ec) {
    failed = ec;
    done = true;
  };
  resolver.async_resolve(
    to.host, to.port, [&](beast::error_code ec, tcp::resolver::results_type r) {
      if (ec)
        return fail(ec);
      stream.async_connect(r, [&](beast::error_code ec, auto&&) {
        if (ec)
          return fail(ec);
        bhttp::async_write(stream, req, [&](beast::error_code ec, size_t) {
          if (ec)
            return fail(ec);
          bhttp::async_read(stream, buffer, parser,
                            [&](beast::error_code ec, size_t) {
                              failed = ec;
                              done = true;
                            });
        });
      });
    });
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && !ioc.stopped()) {
    if (stop && stop->load())
      return http_failure{"interrupted", true};
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return http_failure{"no answer within "
                          + std::to_string(timeout.count() / 1000) + " s"};
    ioc.run_for(std::min<std::chrono::steady_clock::duration>(
      deadline - now, std::chrono::milliseconds(100)));
  }
  if (!done)
    return http_failure{"the connection ended without an answer"};
  if (failed)
    return http_failure{failed.message()};
  http_answer a;
  a.status = parser.get().result_int();
  a.body = parser.get().body();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return a;
}

} // namespace parley::ctl
