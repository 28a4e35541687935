#pragma once

// The inbox projection's reads by id (issue 21, item 4): list_inbox and
// compute_inbox_entry (inbox_store.hpp) as the user's side reads them,
// through the partition requests of runtime/core/sync_reads.hpp: the
// user's membership and inbox rows from the user's partition, each
// conversation's probe (latest visible message, read cursor, unread count
// from the log) from the conversation's partition, one request per
// partition. `partition_reads` answers them: on one node the store's own
// answer_* functions (sync_reads.hpp); a router can send them instead.
// Results equal list_inbox's and compute_inbox_entry's
// (tests/sim/user_sync_test.cpp).

#include <cstdint>
#include <functional>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/core/sync_reads.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// Who answers the reads of a partition.
struct partition_reads {
  std::function<caf::expected<conv_answers>(const conv_reads&)> convs;
  std::function<caf::expected<user_answers>(const user_reads&)> users;
  uint32_t partitions = 1;

  /// Answered straight from `kv` (one node: every partition's data).
  static partition_reads local(kv_backend& kv, uint32_t partitions,
                               uint64_t recent = 50);
};

/// list_inbox(kv, user, stale), read by id through `reads`. With
/// `recount`, every entry is counted from the log and listed as stale (a
/// rebuild).
caf::expected<std::vector<inbox_entry>>
list_inbox_by_id(const partition_reads& reads, user_id user,
                 std::vector<inbox_entry>* stale = nullptr,
                 bool recount = false);

/// compute_inbox_entry(kv, user, conv), read by id through `reads`.
/// Error: forbidden if the user never was a member.
caf::expected<inbox_entry>
compute_inbox_entry_by_id(const partition_reads& reads, user_id user,
                          conversation_id conv);

} // namespace parley::store
