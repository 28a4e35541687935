#pragma once

// Helpers of the sync unit tests (sync_paging_test.cpp, sync_split_test.cpp,
// store_test.cpp): the user actor's page builder (store::user_sync) over a
// kv_backend's partitions, answered by function call (sync_by_id.hpp), each
// page encoded as the gateway encodes it.

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "runtime/gateway/frame_codec.hpp"
#include "runtime/gateway/ws_sink.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/sync_by_id.hpp"

namespace parley::sync_test {

/// Partitions the tests' ids are placed among (the deployment default:
/// most conversations of a test have a partition of their own).
inline constexpr uint32_t partitions = 64;

/// One page of `user`'s sync, every read answered from `kv`; conversations
/// without a cursor get their last 50.
inline caf::expected<sync_page> page_of(kv_backend& kv, const sync_request& req,
                                        user_id user = 7) {
  return store::sync_by_id(store::partition_reads::local(kv, partitions, 50),
                           user, req);
}

/// The SyncPage frame the gateway sends for `page` (connection_sync.cpp).
inline v1::ServerFrame to_frame(const sync_page& page) {
  v1::ServerFrame f;
  f.set_request_id(UINT32_MAX);
  auto* p = f.mutable_sync_page();
  for (auto& e : page.inbox)
    gateway::to_wire_inbox(e, *p->add_inbox());
  p->set_total_unread(page.total_unread);
  for (auto& r : page.receipts)
    gateway::to_wire_receipt(r, *p->add_receipts());
  for (auto& m : page.messages)
    gateway::to_wire_message(m, *p->add_messages());
  p->set_continuation(page.continuation);
  return f;
}

inline size_t encoded(const sync_page& page, gateway::frame_format fmt) {
  return gateway::encode_server_frame(to_frame(page), fmt).size();
}

/// A stored message of `conv` at `seq` from `sender`.
inline stored_message message(conversation_id conv, sequence seq,
                              user_id sender, std::string payload) {
  stored_message m;
  m.conversation = conv;
  m.seq = seq;
  m.sender_user = sender;
  m.sender_device = 1;
  m.client_message_id = "c" + std::to_string(conv) + "-" + std::to_string(seq);
  m.sent_at_ms = 1000 + static_cast<int64_t>(seq);
  m.kind = 1;
  m.payload = std::move(payload);
  return m;
}

/// Pages through a sync of user 7 from `req`, sending only the
/// continuation after the first page (as the README tells clients to: no
/// cursors, no page size, no cursors_only); checks every page's frame
/// against the limit in both formats.
inline std::vector<sync_page> sync_all(kv_backend& kv, sync_request req,
                                       int max_pages = 1000) {
  std::vector<sync_page> pages;
  for (int i = 0; i < max_pages; ++i) {
    auto page = page_of(kv, req);
    REQUIRE(page);
    CHECK(encoded(*page, gateway::frame_format::json) <= req.max_frame_bytes);
    CHECK(encoded(*page, gateway::frame_format::binary)
          <= req.max_frame_bytes);
    pages.push_back(*page);
    if (page->continuation.empty())
      return pages;
    sync_request next;
    next.max_frame_bytes = req.max_frame_bytes; // the node's, not the client's
    next.read_receipts = req.read_receipts;
    next.continuation = page->continuation;
    req = next;
  }
  FAIL("sync did not end within " << max_pages << " pages");
  return pages;
}

using seen_list = std::vector<std::pair<conversation_id, sequence>>;

/// Every message of `pages` as (conversation, sequence), in page order.
inline seen_list messages_of(const std::vector<sync_page>& pages) {
  seen_list out;
  for (auto& p : pages)
    for (auto& m : p.messages)
      out.emplace_back(m.conversation, m.seq);
  return out;
}

} // namespace parley::sync_test
