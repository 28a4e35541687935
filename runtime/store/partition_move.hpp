#pragma once

// Moving a partition to another node: the data part (issue 21). A
// partition is one range of keys (layout.hpp, partition_range), so a move
// copies that range from the old owner's store to the new owner's. The
// caller drives the move step by step with the partition map as a value:
//
//   1. stream: mirror_chunk over the range, chunk after chunk, while the
//      old owner still serves the partition (each chunk a synced write on
//      the new side; what changes behind the cursor is caught by step 3);
//   2. fence: the old owner gets a map of a higher epoch in which it does
//      not own the partition: its directory stops serving it (requests get
//      errc::unavailable, retryable) and its store writer refuses every
//      commit into the range (store_writer.hpp, the partition fence). Once
//      the writer has answered the fence, the old range no longer changes;
//   3. tail: mirror_chunk over the whole range again: each chunk makes the
//      new side's keys in its span equal to the old side's (puts of keys
//      that are new or changed, deletes of keys the old side no longer
//      has), so the pass after the fence leaves the two ranges equal. Only
//      the differences are written; the old range is read in full again;
//   4. switch: the new owner gets the same map; its actors load the
//      partition from its own store.
//
// Between 2 and 4 requests for the partition get retryable errors (the
// old owner forwards them, the new one does not own them yet); a client
// retries with the same clientMessageId and its idempotency key, copied
// with the range, answers the original sequence.
//
// Synchronous reads, a pure plan: the caller applies the batch (through
// the new owner's store writer, or in a test straight to its store).

#include <cstdint>
#include <string>

#include <caf/expected.hpp>

#include "runtime/core/write_batch.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// Where a pass over a partition's range stands.
struct move_cursor {
  uint32_t partition = 0;
  uint32_t partitions = 1;
  std::string next; ///< the first key the next chunk covers
  bool done = false; ///< the pass reached the range's end
};

/// A cursor at the start of partition `p` of `partitions`.
move_cursor start_pass(uint32_t p, uint32_t partitions);

/// One chunk of a pass.
struct move_chunk {
  write_batch batch;   ///< makes the new side's span equal the old side's
  move_cursor after;   ///< where the next chunk starts
  uint64_t read = 0;   ///< old-side keys read
  uint64_t puts = 0;   ///< keys new or changed on the new side
  uint64_t erases = 0; ///< keys the old side no longer has
};

/// The old side's half of a chunk, as it crosses from the old owner to the
/// new one (a cluster's move, runtime/partition_move_driver.hpp): the
/// records read, as puts, and the span they cover.
struct move_read {
  write_batch records; ///< puts of the old side's keys, in key order
  std::string span_end; ///< the span is [at.next, span_end)
  bool done = false;   ///< the span reaches the partition's end
};

/// Reads the old side's records of the next chunk of `at`'s pass (up to
/// `max_keys`). Errors: bad_request (no such partition), the backend's.
caf::expected<move_read> read_chunk(kv_backend& from, const move_cursor& at,
                                    size_t max_keys);

/// The new side's half: the batch that makes `to`'s keys in the span of
/// `r` equal the old side's. Errors: bad_request if `r` is not a chunk of
/// that pass (a record outside the span or the partition, a span that
/// does not start at `at.next`, an operation that is not a put), the
/// backend's.
caf::expected<move_chunk> plan_apply(kv_backend& to, const move_cursor& at,
                                     const move_read& r);

/// Plans the next chunk of `at`'s pass (read_chunk, then plan_apply): reads up to `max_keys` keys of
/// the old side `from` from `at.next` on; the chunk's span runs from
/// `at.next` to just past the last key read (to the range's end when
/// fewer were left). The batch puts every old-side key of the span whose
/// value differs on the new side `to` and erases every new-side key of
/// the span the old side lacks. Apply it as one synced write, then go on
/// from `after`. Errors: bad_request (no such partition), the backends'.
caf::expected<move_chunk> mirror_chunk(kv_backend& from, kv_backend& to,
                                       const move_cursor& at,
                                       size_t max_keys);

/// True if the two stores hold the same keys and values in partition `p`
/// of `partitions` (for tests and a move's final check).
caf::expected<bool> same_partition(kv_backend& a, kv_backend& b, uint32_t p,
                                   uint32_t partitions);

} // namespace parley::store
