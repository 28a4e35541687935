#pragma once

// Placement: which partition an id belongs to, and which node owns a
// partition. `slot_of` and `partition_of` are a format, not a detail: data
// is placed by them (every partitioned key starts with its owner's slot,
// runtime/store/keys.hpp), so they never change; a change would need a
// migration of every data directory. The partition map is the one thing a
// cluster changes: a plain value with an epoch that only grows.
//
// Slots (Redis Cluster's hash slots): an id's slot is the top 16 bits of
// its placement hash, 0-65535. A partition is one contiguous range of
// slots: partition_of(key, P) = slot * P / 65536 (rounded down), monotonic
// in the slot, so for any P from 1 to max_partitions partition p holds the
// slots slot_range(p, P) and its data is one range of keys
// (runtime/store/layout.hpp, partition_range).

#include <cstdint>
#include <string>
#include <string_view>
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
/// A username (placed by fnv1a_64 of its bytes): owns the 'u' record.
inline constexpr uint8_t id_kind_username = 3;

/// FNV-1a 64 of `bytes`, the one string hash of placement (usernames and
/// any other name placed by its bytes). DO NOT CHANGE: data is placed by
/// it. Offset basis 0xCBF29CE484222325, prime 0x100000001B3; for each byte
/// b: h ^= b; h *= prime (mod 2^64). fnv1a_64("") is the offset basis and
/// fnv1a_64("a") == 0xAF63DC4C8601EC8C (pinned in tests/unit/).
constexpr uint64_t fnv1a_64(std::string_view bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

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
  /// A username: its bytes hashed by fnv1a_64 (case and all: usernames
  /// are validated lower-case before they are placed).
  static placement_key username(std::string_view name) {
    return {id_kind_username, fnv1a_64(name)};
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

/// Slots: the placement hash's top 16 bits. DO NOT CHANGE.
inline constexpr uint32_t slot_count = 65536;

/// The slot of `key`: placement_hash(key) >> 48.
uint16_t slot_of(placement_key key);

/// The partition of `slot` among `partitions` (1-max_partitions):
/// (slot * partitions) >> 16. DO NOT CHANGE.
uint32_t partition_of_slot(uint32_t slot, uint32_t partitions);

/// The partition of `key` among `partitions` (1-max_partitions):
/// partition_of_slot(slot_of(key), partitions). DO NOT CHANGE.
uint32_t partition_of(placement_key key, uint32_t partitions);

/// The slots of a partition: [first, end), end <= slot_count.
struct slot_span {
  uint32_t first = 0;
  uint32_t end = 0;
};

/// The slots partition `p` of `partitions` holds (empty if p is out of
/// range): every slot s with partition_of_slot(s, partitions) == p. The
/// spans of 0..partitions-1 tile 0..slot_count in order.
slot_span slot_range(uint32_t p, uint32_t partitions);

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

  /// Checks that the map has `partitions` entries and an epoch of at least
  /// 1 (an entry of no_node is a partition nobody serves: a move between
  /// its fence and its switch). Error: errc::bad_request, saying what.
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
