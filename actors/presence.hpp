#pragma once

// Which devices of a user hold a connection, readable from any thread: the
// large-group fan-out shards push through it without asking the device
// registry (which stays free for 1:1 and small-group traffic). The
// registry writes it as connections come and go.
//
// Pushes through here are exactly-once per connection and conversation: a
// message at or below the last sequence pushed to that connection for its
// conversation is skipped, so a shard that restarts and repeats a slice
// does not double anything.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <caf/actor_addr.hpp>

#include "actors/local_messages.hpp"

namespace parley {

class presence {
public:
  /// `device` of `user` is now held by connection `conn`, pushing to `sink`.
  void attach(user_id user, device_id device, const caf::actor_addr& conn,
              std::shared_ptr<device_sink> sink);

  /// Connection `conn` of the device is gone (no-op if a newer one holds
  /// the device).
  void detach(user_id user, device_id device, const caf::actor_addr& conn);

  /// Pushes `pm` to every connected device of `user` except the one that
  /// sent it, once per connection; returns how many pushes were made.
  size_t deliver(user_id user, const prepared_message& pm);

  /// Connected devices over all users (tests, metrics).
  size_t connected() const;

private:
  struct slot {
    device_id device = 0;
    caf::actor_addr conn;
    std::shared_ptr<device_sink> sink;
    /// Highest sequence pushed on this connection, per conversation.
    std::shared_ptr<std::unordered_map<conversation_id, sequence>> pushed;
  };

  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<user_id, std::vector<slot>> users;
  };

  shard& shard_of(user_id user) {
    return shards_[user % shards_.size()];
  }

  std::array<shard, 64> shards_;
};

} // namespace parley
