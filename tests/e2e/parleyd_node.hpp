#pragma once

// A real parleyd for end-to-end tests: started on a free loopback port over
// a fresh data directory (removed afterwards), stopped with SIGTERM (and
// checked to exit cleanly) or killed and restarted on the same data.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <map>
#include <optional>

#include "parley/v1/wire.pb.h"
#include "process.hpp"
#include "ws_client.hpp"

namespace parley::e2e {

class node {
public:
  /// Starts parleyd with `extra` arguments after the defaults.
  explicit node(std::vector<std::string> extra = {});

  /// Stops parleyd (SIGTERM, expects exit 0) and removes the data.
  ~node();

  /// Sends `sig` to parleyd and reaps it (waits until it has exited).
  void stop(int sig);

  /// Starts parleyd again on the same data directory. One still running is
  /// first killed (SIGKILL) and reaped, so the new one never races it for
  /// the data's lock.
  void restart();

  /// Registers `name` (password "correct horse") and logs `device` in;
  /// returns the device's token.
  std::string account(const std::string& name, const std::string& device);

  /// Logs another device of `name` in; returns its token.
  std::string login(const std::string& name, const std::string& device);

  /// What the node has logged so far.
  std::vector<std::string> log();

  uint16_t port = 0;
  /// The admin port, from parleyd's "admin listening ... port=N" line (0
  /// without an admin port; see parleyctl_run.hpp's admin_args()).
  uint16_t admin_port = 0;
  std::string dir;

private:
  std::vector<std::string> extra_;
  std::unique_ptr<child> proc_;
};

/// The value of "key":"value" (or "key":value) in a JSON text, or empty.
std::string json_field(const std::string& json, const std::string& key);

/// The user id behind a token, as the server reports it in Welcome.
uint64_t user_id_of(uint16_t port, const std::string& token);

/// Says Hello with `token` on `c` and opens the direct conversation with
/// `peer`; returns its id (request ids 1 and 2).
uint64_t open_chat(ws_client& c, const std::string& token,
                   const std::string& peer, gateway::frame_format fmt);

/// Syncs from `cursors` (conversation -> after sequence) until the
/// continuation is empty; returns every page (at most `max_pages`).
std::vector<v1::SyncPage>
sync_all(ws_client& c, const std::map<uint64_t, uint64_t>& cursors,
         uint32_t page_size, gateway::frame_format fmt, uint32_t first_rid,
         int max_pages = 1000);

/// Sends `first`, then frames with nothing but the continuation (and the
/// next request id, as the README tells clients to: no cursors, no page
/// size); checks each SyncPage frame, as encoded, against `limit`.
/// Returns every page (at most 1000).
std::vector<v1::SyncPage> sync_by_continuation(ws_client& c,
                                               v1::ClientFrame first,
                                               gateway::frame_format fmt,
                                               uint32_t limit);

/// The operator's token hash as parleyd takes it (hex of b2sum -l 256).
std::string admin_token_hash(const std::string& token);

/// A Delivered (or, `read`, a Read) receipt frame for `conv` up to `seq`.
v1::ClientFrame receipt_frame(uint32_t rid, uint64_t conv, uint64_t seq,
                              bool read);

/// Whether `f` is a Receipt of `kind` up to `seq`.
bool is_receipt(const v1::ServerFrame& f, v1::ReceiptKind kind, uint64_t seq);

/// The code of an Error frame (fails the test for anything else).
v1::Error::Code error_of(const std::optional<v1::ServerFrame>& f);

} // namespace parley::e2e
