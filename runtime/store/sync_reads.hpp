#pragma once

// Answers the reads a user's sync asks of partitions (runtime/core/
// sync_reads.hpp): the store reader of a partition runs these. Each reads
// only keys of ids its request names: a conv_reads only its conversations'
// records (head, messages, receipt cursors), a user_reads only its users'
// (memberships, inbox rows and flags, the read-receipt setting).

#include <cstdint>

#include <caf/expected.hpp>

#include "runtime/core/sync_reads.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// Answers each query of `reads` in order (see conv_reads). A conversation
/// without a cursor gets its last `recent` messages.
caf::expected<conv_answers> answer_conv_reads(kv_backend& kv,
                                              const conv_reads& reads,
                                              uint64_t recent);

/// Answers `reads` (see user_reads).
caf::expected<user_answers> answer_user_reads(kv_backend& kv,
                                              const user_reads& reads);

} // namespace parley::store
