#pragma once

// Shared by the one-shot calls and the watch stream: a Beast/Asio error
// code as a cp_error, and a numeric endpoint as an Asio one.

#include "runtime/cluster/control_plane.hpp"
#include "runtime/cluster/http_call.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace parley::cluster {

/// `ec` (from step `what`: connect, write, read) as a cp_error.
inline cp_error error_of_io(boost::beast::error_code ec, const char* what) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  std::string msg = std::string(what) + ": " + ec.message();
  if (ec == boost::beast::error::timeout)
    return {cp_errc::timeout, msg};
  if (ec == asio::error::connection_refused
      || ec == asio::error::host_unreachable
      || ec == asio::error::network_unreachable)
    return {cp_errc::unreachable, msg};
  if (ec == asio::error::eof || ec == asio::error::connection_reset
      || ec == asio::error::broken_pipe || ec == http::error::end_of_stream
      || ec == http::error::partial_message)
    return {cp_errc::closed, msg};
  if (ec == http::error::body_limit || ec == http::error::header_limit
      || ec == http::error::buffer_overflow)
    return {cp_errc::bad_answer, msg + " (oversized)"};
  if (ec.category() == http::make_error_code(http::error::bad_version)
                          .category())
    return {cp_errc::http, msg};
  return {cp_errc::closed, msg};
}

/// `to` as an Asio endpoint: a numeric address, or "localhost" (127.0.0.1).
inline cp_result<boost::asio::ip::tcp::endpoint>
resolve_numeric(const endpoint& to) {
  boost::system::error_code ec;
  auto host = to.host == "localhost" ? std::string("127.0.0.1") : to.host;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec)
    return cp_error{cp_errc::unreachable,
                    "not a numeric address: " + to.host};
  return boost::asio::ip::tcp::endpoint(addr, to.port);
}

} // namespace parley::cluster
