#pragma once

// Internal to the connection actor: the helpers its frame handlers share
// (connection.cpp: session, sends; connection_sync.cpp: sync;
// connection_receipts.cpp: receipts and inbox flags; connection_groups.cpp:
// groups). Not an interface for other code.

#include <string>

#include "runtime/gateway/connection.hpp"

namespace parley::gateway::connection_detail {

using self_ptr = connection_actor::stateful_pointer<connection_state>;

/// Sends a frame on this connection (counted in the metrics).
void reply(self_ptr self, const v1::ServerFrame& f, frame_format fmt);

/// Answers request `request_id` with an Error frame.
void reply_error(self_ptr self, uint32_t request_id, frame_format fmt,
                 v1::Error::Code code, std::string message,
                 bool retryable = false);

/// Answers request `request_id` with the Error frame for `err`.
void reply_error(self_ptr self, uint32_t request_id, frame_format fmt,
                 const caf::error& err);

/// Takes `cost` tokens from the limiter's bucket `key`; false (and an
/// Error{RATE_LIMITED, retry_after_ms} answer to `rid`) if refused.
bool within_limit(self_ptr self, uint32_t rid, frame_format fmt,
                  const std::string& key, const bucket_spec& spec,
                  double cost = 1);

/// Registers `a` as waiting for an answer (arming the deadline tick);
/// returns the tag its request carries (connection.cpp).
uint64_t await_answer(self_ptr self, awaited_answer a);

/// Answers the receipt frame `a` waited for: an Error frame if refused.
void on_receipt_answer(self_ptr self, const awaited_answer& a,
                       const caf::error& err);

/// Delivered, Read, SetConversationFlags (connection_receipts.cpp).
void on_delivered(self_ptr self, const v1::ClientFrame& frame,
                  frame_format fmt);
void on_read(self_ptr self, const v1::ClientFrame& frame, frame_format fmt);
void on_set_flags(self_ptr self, const v1::ClientFrame& frame,
                  frame_format fmt);

/// Sync (connection_sync.cpp).
void on_sync(self_ptr self, const v1::ClientFrame& frame, frame_format fmt);

/// GroupCreate, GroupChange, GetGroup (connection_groups.cpp).
void on_group_create(self_ptr self, const v1::ClientFrame& frame,
                     frame_format fmt);
void on_group_change(self_ptr self, const v1::ClientFrame& frame,
                     frame_format fmt);
/// Members per GetGroup page: `requested` (0: 1000), at most 5000, and
/// never more than a GroupInfo frame under `max_server_frame_bytes` holds.
uint32_t group_page_limit(uint32_t requested, size_t max_server_frame_bytes);

void on_get_group(self_ptr self, const v1::ClientFrame& frame,
                  frame_format fmt);

} // namespace parley::gateway::connection_detail
