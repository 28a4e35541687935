#pragma once

// The server's WebSocket side, internal to server.cpp: a session over a
// coalescing_stream (the ws_link the actor side holds), and the bulk lane
// that takes large-group fan-out to the sockets in rounds.

#include <utility> // Asio in Boost 1.74 needs it first

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "runtime/gateway/coalescing_stream.hpp"
#include "runtime/gateway/server.hpp"

namespace parley::gateway::detail {

using http_request_msg =
  boost::beast::http::request<boost::beast::http::string_body>;

/// The handler's view of a parsed request.
http_request to_request(const http_request_msg& req,
                        const std::string& remote);

/// Sessions with bulk frames waiting, served a round at a time.
class bulk_lane;

/// A bulk lane on `ioc` (which must outlive it).
std::shared_ptr<bulk_lane> make_bulk_lane(boost::asio::io_context& ioc);

/// Completes the upgrade `req` on `socket` and runs the session: frames go
/// to the handlers `acceptor` returns; it lives as long as its socket.
void start_ws_session(coalescing_stream::socket_type&& socket,
                      const server_options& opts,
                      std::shared_ptr<bulk_lane> bulk, http_request_msg req,
                      const std::string& remote, const ws_acceptor& acceptor);

} // namespace parley::gateway::detail
