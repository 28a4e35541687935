#pragma once

// Which devices of a user hold a connection, readable from any thread of
// this node: the large-group fan-out shards find the device actors to
// deliver to here without asking the device registry (which stays free for
// 1:1 and small-group traffic). The registry writes it as connections come
// and go. It holds actor handles only; deliveries are ordinary messages to
// the device actors, which pass each large-group message on to their
// connection at most once.

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <caf/actor_addr.hpp>

#include "actors/device.hpp"

namespace parley {

class presence {
public:
  /// `device` of `user` is now held by connection `conn`; its mailbox is
  /// `actor`.
  void attach(user_id user, device_id device, const caf::actor_addr& conn,
              device_actor actor);

  /// Connection `conn` of the device is gone (no-op if a newer one holds
  /// the device).
  void detach(user_id user, device_id device, const caf::actor_addr& conn);

  /// Appends the mailboxes of `user`'s connected devices to `out`, except
  /// `skip_device` when `user` is `skip_user` (the sending device).
  void connected_devices(user_id user, user_id skip_user,
                         device_id skip_device,
                         std::vector<device_actor>& out) const;

  /// Connected devices over all users (tests, metrics).
  size_t connected() const;

private:
  struct slot {
    device_id device = 0;
    caf::actor_addr conn;
    device_actor actor;
  };

  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<user_id, std::vector<slot>> users;
  };

  const shard& shard_of(user_id user) const {
    return shards_[user % shards_.size()];
  }

  shard& shard_of(user_id user) {
    return shards_[user % shards_.size()];
  }

  std::array<shard, 64> shards_;
};

} // namespace parley
