// Issue 20: every frame the server sends stays under the limit it announces
// (max-server-frame-bytes), group frames included: a GetGroup page and a
// MEMBERSHIP event of the largest allowed change, in JSON (the larger
// format) with the widest values a client can cause.

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "actors/conversation.hpp"
#include "runtime/gateway/connection_detail.hpp"
#include "runtime/gateway/frame_codec.hpp"
#include "runtime/store/sync_paging.hpp"

using namespace parley;
using namespace parley::gateway;
using parley::gateway::connection_detail::group_page_limit;

namespace {

constexpr auto widest = std::numeric_limits<uint64_t>::max();

/// JSON escapes a control character as \u00XX: six bytes for one.
std::string escaped_worst(size_t n) {
  return std::string(n, '\x01');
}

size_t json_size(const v1::ServerFrame& f) {
  return encode_server_frame(f, frame_format::json).size();
}

} // namespace

TEST_CASE("a GetGroup page of the widest members fits the announced limit") {
  auto least = store::min_server_frame_bytes(64 * 1024);
  for (size_t limit : {least, least + 4096, size_t{256} * 1024,
                       size_t{512} * 1024, size_t{4} << 20}) {
    auto n = group_page_limit(5000, limit);
    CAPTURE(limit);
    CAPTURE(n);
    CHECK(n >= 1);
    CHECK(n <= 5000);
    v1::ServerFrame f;
    f.set_request_id(std::numeric_limits<uint32_t>::max());
    auto* g = f.mutable_group_info();
    g->set_conversation_id(widest);
    g->set_name(escaped_worst(256));
    g->set_description(escaped_worst(2048));
    g->set_head_sequence(widest);
    g->set_next_after_user_id(widest);
    g->set_member_count(std::numeric_limits<uint32_t>::max());
    for (uint32_t i = 0; i < n; ++i) {
      auto* m = g->add_members();
      m->set_user_id(widest);
      m->set_admin(true);
      m->set_joined_at_sequence(widest);
    }
    CHECK(json_size(f) <= limit);
  }
  CHECK(group_page_limit(0, size_t{512} * 1024) == 1000);
  CHECK(group_page_limit(20, size_t{512} * 1024) == 20);
  CHECK(group_page_limit(9000, size_t{512} * 1024) == 5000);
  CHECK(group_page_limit(5000, 100) == 1); // a page is never empty
}

TEST_CASE("the largest allowed membership event fits the smallest limit") {
  v1::ServerFrame f;
  f.set_event_seq(std::numeric_limits<uint32_t>::max());
  auto* m = f.mutable_message();
  m->set_conversation_id(widest);
  m->set_server_sequence(widest);
  m->set_server_message_id(std::string(32, 'f'));
  m->set_sender_user_id(widest);
  m->set_sender_device_id(widest);
  m->set_sent_at_ms(std::numeric_limits<int64_t>::min());
  m->set_kind(v1::MESSAGE_KIND_MEMBERSHIP);
  auto* ms = m->mutable_membership();
  ms->set_change(v1::Membership::CHANGE_CREATED);
  ms->set_actor_user_id(widest);
  ms->set_name(escaped_worst(256));
  for (size_t i = 0; i < max_change_targets; ++i)
    ms->add_target_user_ids(widest);
  CHECK(json_size(f) <= store::min_server_frame_bytes(64 * 1024));
}
