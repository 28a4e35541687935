#pragma once

// store_reader: answers reads of the node's database (idempotency lookups,
// message pages, the outbox relay's scan) off the writer's thread, so reads
// never wait behind a synced write. Reads see every commit acknowledged
// before they were asked. May block on disk: node.cpp spawns it detached.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_actor.hpp>

#include "runtime/core/sync_reads.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley {

using store_reader_actor = caf::typed_actor<
  /// Looks up the idempotency record of (conv, user, device, cmid).
  caf::replies_to<lookup_atom, conversation_id, user_id, device_id,
                  std::string>::with<idempotency_hit>,
  /// Reads up to `limit` messages of `conv` after sequence `after`, in order.
  caf::replies_to<fetch_atom, conversation_id, sequence,
                  uint64_t>::with<std::vector<stored_message>>,
  /// Lists conversations with undispatched outbox records.
  caf::replies_to<outbox_atom>::with<std::vector<uint64_t>>,
  /// The same for partition `p` of `partitions` only (a node taking it).
  caf::replies_to<outbox_atom, uint32_t, uint32_t>::with<
    std::vector<uint64_t>>,
  /// Finds idempotency records of `conv` past their window: messages after
  /// `after` sent before `cutoff_ms`, at most `limit`.
  caf::replies_to<sweep_atom, conversation_id, sequence, int64_t,
                  uint64_t>::with<idempotency_sweep>,
  /// The highest sequence `user` may acknowledge in `conv` (store::ack_limit:
  /// the conversation's side only, its member record and head).
  caf::replies_to<ack_atom, user_id, conversation_id>::with<sequence>,
  /// A user's sync asks the partition its conversations' records
  /// (store::answer_conv_reads) and its users' rows
  /// (store::answer_user_reads), routed by the directory.
  caf::replies_to<fetch_atom, conv_reads>::with<conv_answers>,
  caf::replies_to<fetch_atom, user_reads>::with<user_answers>>;

struct store_reader_state {
  std::shared_ptr<kv_backend> kv;
  /// Messages per conversation a sync without a cursor gets (a new
  /// device's recent history).
  uint64_t sync_recent = 50;

  static inline const char* name = "store_reader";
};

store_reader_actor::behavior_type
store_reader_impl(store_reader_actor::stateful_pointer<store_reader_state> self,
                  std::shared_ptr<kv_backend> kv, uint64_t sync_recent);

} // namespace parley
