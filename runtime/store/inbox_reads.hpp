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

/// A continuation: gets the answer, or the error, of an asynchronous read.
template <class T>
using then_fn = std::function<void(caf::expected<T>)>;

/// The same reads, answered asynchronously (by message: an actor sends
/// each request through the directory and calls the continuation with the
/// answer or the error, a timeout included). A continuation is called once.
struct async_reads {
  std::function<void(conv_reads, then_fn<conv_answers>)> convs;
  std::function<void(user_reads, then_fn<user_answers>)> users;
  uint32_t partitions = 1;

  /// Answered by `sync` at once (the seam for tests and one node).
  static async_reads of(partition_reads sync);
};

/// What list_inbox_async finds: the entries, and those whose stored row
/// disagreed with the log (recounted), for the caller to repair.
struct listed_inbox {
  std::vector<inbox_entry> entries;
  std::vector<inbox_entry> stale;
};

/// list_inbox_by_id by message: memberships and rows from the user's
/// partition, then one probe request per conversation partition (sent
/// together); `done` gets the sorted entries.
void list_inbox_async(const async_reads& reads, user_id user, bool recount,
                      then_fn<listed_inbox> done);

/// compute_inbox_entry_by_id by message.
void compute_inbox_entry_async(const async_reads& reads, user_id user,
                               conversation_id conv,
                               then_fn<inbox_entry> done);

/// The users with a membership record in partition `p` of `partitions`
/// of `kv` (the 'y' keys of the partition's slots only), in key order.
caf::expected<std::vector<user_id>>
users_in_partition(kv_backend& kv, uint32_t p, uint32_t partitions);

/// Answers a conv_read_member_probe query `q` from `kv` (for
/// answer_conv_reads): the conversation's member record of `q.user` gives
/// the window, then the probe counts from the log (no stored row).
/// Errors: forbidden (never a member), the store's.
caf::error member_probe(kv_backend& kv, const conv_query& q, uint64_t recent,
                        conv_answer& a);

/// The (conversation, user) pairs of the member records ('b') of the
/// conversations in partition `p` of `partitions` of `kv`, in key order.
caf::expected<std::vector<std::pair<conversation_id, user_id>>>
members_in_partition(kv_backend& kv, uint32_t p, uint32_t partitions);

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
