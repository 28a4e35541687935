#pragma once

// Clients for the cluster end-to-end tests: accounts registered over HTTP
// on a chosen node (with their user id), and devices that keep every push
// (messages, receipts) and every answer by request id, so a test can send
// pipelined and look at what arrived in what order.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/v1/wire.pb.h"
#include "ws_client.hpp"

namespace parley::e2e {

class lone_node;
class test_cluster;

/// Where clients connect (node -> client port) and who owns a
/// conversation: a cluster, or a single node (node 1, owning everything)
/// for control runs of the same scenario.
struct deployment {
  std::function<uint16_t(uint64_t)> port;
  std::function<uint64_t(uint64_t)> owner;
};
deployment of(test_cluster& c);
deployment of(lone_node& n);

/// A registered user and one logged-in device of theirs.
struct user_account {
  std::string name;
  uint64_t id = 0;
  std::string token;
};

/// Registers `name` (password "correct horse") through node `port` and
/// logs `device` in; nullopt if either call fails (no doctest macros:
/// callable from threads of the test).
std::optional<user_account> try_register(uint16_t port, const std::string& name,
                                         const std::string& device);
/// The same, REQUIRing success.
user_account register_user(uint16_t port, const std::string& name,
                           const std::string& device);
/// Logs another device of `name` in through `port`; its token.
std::string login_device(uint16_t port, const std::string& name,
                         const std::string& device);

/// One connected device: pushes kept in arrival order, answers by id.
struct device {
  std::unique_ptr<ws_client> ws;
  uint32_t rid = 10;
  std::vector<v1::Message> got;
  std::vector<v1::ReceiptUpdate> receipts;
  std::map<uint32_t, v1::ServerFrame> answers;

  /// Connects to `port` and says Hello with `token` (REQUIREs a Welcome).
  void connect(uint16_t port, const std::string& token);
  /// Sends `f` with the next request id; returns that id.
  uint32_t send(v1::ClientFrame f);
  /// Reads until the answer to `id` (or a bound); keeps pushes meanwhile.
  std::optional<v1::ServerFrame> answer(uint32_t id, int bound_ms = 30000);
  std::optional<v1::ServerFrame> call(v1::ClientFrame f) {
    return answer(send(std::move(f)));
  }
  /// Reads one frame and keeps it; false on timeout or close.
  bool read_one(int timeout_ms);
  /// Reads until `done()` holds (false after a bound).
  bool wait_until(const std::function<bool()>& done, int bound_ms = 30000);
  /// Reads until `n` messages were pushed in all (false after a bound).
  bool wait_messages(size_t n, int bound_ms = 30000);
  /// Reads until a receipt satisfying `pred` came (false after a bound).
  std::optional<v1::ReceiptUpdate>
  wait_receipt(const std::function<bool(const v1::ReceiptUpdate&)>& pred,
               int bound_ms = 30000);
  /// Reads until nothing comes for `quiet_ms`.
  void drain(int quiet_ms = 300);
  /// The sequences of the messages pushed so far, in arrival order.
  std::vector<uint64_t> seqs() const;
  /// The same, of conversation `conv` only.
  std::vector<uint64_t> seqs_in(uint64_t conv) const;
};

/// Frames the tests send.
v1::ClientFrame text(uint64_t conv, const std::string& cmid,
                     const std::string& payload);
v1::ClientFrame receipt(uint64_t conv, uint64_t seq, bool read);
v1::ClientFrame direct(const std::string& peer);
v1::ClientFrame group_create(const std::string& name,
                             const std::vector<uint64_t>& members);
v1::ClientFrame group_add(uint64_t conv, const std::vector<std::string>& names);

/// A fresh connection's first sync page (no cursors): the inbox.
v1::SyncPage inbox_page(uint16_t port, const std::string& token);
/// Every message of `conv` from sequence 1, by sync on a fresh connection.
std::vector<v1::Message> history(uint16_t port, const std::string& token,
                                 uint64_t conv);
/// The receipts of `conv` a sync from `after` carries.
std::vector<v1::ReceiptUpdate> synced_receipts(uint16_t port,
                                               const std::string& token,
                                               uint64_t conv, uint64_t after);
/// The unread count of `conv` in `page`'s inbox (-1 if it has no row).
int64_t unread_of(const v1::SyncPage& page, uint64_t conv);

/// Polls `probe` until it returns true, within `bound_ms`; false after.
bool eventually(const std::function<bool()>& probe, int bound_ms = 20000);

} // namespace parley::e2e
