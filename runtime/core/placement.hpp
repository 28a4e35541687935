#pragma once

// Placement: which partition an id belongs to, and which node owns a
// partition. `partition_of` is a format, not a detail: data is placed by it
// (keys and owners follow the partition), so it never changes; a change
// would need a migration of every data directory. The partition map is the
// one thing a cluster changes: a plain value with an epoch that only grows.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>

namespace parley {

/// A node of a deployment: a plain number, unique in the deployment and
/// the same across restarts (the cluster assigns them; a single node is
/// `single_node_id`). `no_node` (0) names no node.
using node_id = uint64_t;
inline constexpr node_id no_node = 0;
inline constexpr node_id single_node_id = 1;

/// Partitions of a deployment unless its store says otherwise (the number
/// is kept in the store at first start and never changes after).
inline constexpr uint32_t default_partitions = 64;
/// The most partitions a deployment may have.
inline constexpr uint32_t max_partitions = 65536;

/// Kinds of placed ids, mixed into the hash: a conversation and a user with
/// the same number land in unrelated partitions. DO NOT CHANGE the values.
inline constexpr uint8_t id_kind_conversation = 1;
inline constexpr uint8_t id_kind_user = 2;

/// An id of some kind to place.
struct placement_key {
  uint8_t kind = id_kind_conversation;
  uint64_t id = 0;

  static placement_key conversation(uint64_t conv) {
    return {id_kind_conversation, conv};
  }
  static placement_key user(uint64_t user) {
    return {id_kind_user, user};
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, placement_key& x) {
  return f(caf::meta::type_name("placement_key"), x.kind, x.id);
}

/// The placement hash of `key`. DO NOT CHANGE: data is placed by it.
///   h = fmix(id + kind * 0x9E3779B97F4A7C15)   (mod 2^64)
/// where fmix is SplitMix64's finalizer (Stafford's Mix13):
///   z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
///   z ^= z >> 27; z *= 0x94D049BB133111EB;
///   z ^= z >> 31.
/// For kind 1 and id 0 that is SplitMix64's first output from seed 0,
/// 0xE220A8397B1DCDAF (pinned in tests/unit/placement_test.cpp).
uint64_t placement_hash(placement_key key);

/// The partition of `key` among `partitions` (> 0): placement_hash(key)
/// mod partitions. DO NOT CHANGE.
uint32_t partition_of(placement_key key, uint32_t partitions);

/// Which node owns each partition, at an epoch. The epoch (`map_epoch`,
/// apart from the store writer's fence epochs and the epochs clients see)
/// only grows: a holder replaces its map only with one of a higher epoch.
struct partition_map {
  uint64_t map_epoch = 0;
  std::vector<node_id> owners; ///< owners[p]: the node owning partition p

  /// Every one of `partitions` owned by `self`, at epoch 1.
  static partition_map single_node(uint32_t partitions,
                                   node_id self = single_node_id);

  uint32_t partitions() const {
    return static_cast<uint32_t>(owners.size());
  }

  /// The owner of partition `p`; no_node if there is none.
  node_id owner(uint32_t p) const {
    return p < owners.size() ? owners[p] : no_node;
  }

  /// Checks that the map has `partitions` entries, each naming a node, and
  /// an epoch of at least 1. Error: errc::bad_request, saying what is wrong.
  caf::error validate(uint32_t partitions) const;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, partition_map& x) {
  return f(caf::meta::type_name("partition_map"), x.map_epoch, x.owners);
}

/// Where an id lives: its partition, the partition's owner, and the epoch
/// of the map that said so.
struct route {
  uint32_t partition = 0;
  node_id owner = no_node;
  uint64_t map_epoch = 0;
  bool local = false; ///< owner is the node that answered
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, route& x) {
  return f(caf::meta::type_name("route"), x.partition, x.owner, x.map_epoch,
           x.local);
}

/// A node's view of placement: who it is and the newest map it accepted.
/// Pure logic for the actors that route (directory, device registry).
struct placement {
  node_id self = single_node_id;
  partition_map map;

  /// This node owning every one of `partitions`, at map epoch 1.
  static placement single_node(uint32_t partitions = default_partitions,
                               node_id self = single_node_id) {
    return {self, partition_map::single_node(partitions, self)};
  }

  /// The route of `key` under the current map.
  route route_of(placement_key key) const;

  /// True if this node owns the partition of `key`.
  bool owns(placement_key key) const {
    return route_of(key).local;
  }

  /// Replaces the map with `next` if it is valid for the same number of
  /// partitions and has a higher epoch. Errors: bad_request (invalid, or
  /// another number of partitions), conflict (an epoch not above the
  /// current one); the map is then unchanged.
  caf::error replace(partition_map next);
};

} // namespace parley
