#pragma once

// Internal to runtime/store: reads of the conversation tables that
// conversation_store.cpp and sync_reads.cpp share. Not an interface for
// code outside store/.

#include <cstdint>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// The highest sequence of `conv` (0 if empty) and, if `sent_at` is given,
/// that message's acceptance time.
caf::expected<sequence> head_of(kv_backend& kv, conversation_id conv,
                                int64_t* sent_at = nullptr);

/// Appends the receipt cursors of every member of `conv` to `out`.
caf::error read_receipts(kv_backend& kv, conversation_id conv,
                         std::vector<receipt_cursor>& out);

} // namespace parley::store
