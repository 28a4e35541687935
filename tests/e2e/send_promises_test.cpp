// Issue 20 through a real parleyd: a Send does what it says or is refused.
// A reply keeps its reference (live and by sync) and may only name a
// message its sender can see; a media message is refused rather than
// stored without its reference; a client_message_id reused for other
// content is a CONFLICT, before and after a restart; a retry answered from
// the idempotency record costs no send budget. Each runs on JSON frames
// (through the connection actor) and on binary frames (which take the
// direct path to the conversation once a send there was accepted).

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "parleyd_node.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

v1::ClientFrame reply_frame(uint32_t rid, uint64_t conv,
                            const std::string& cmid,
                            const std::string& payload, uint64_t reply_to) {
  auto f = send_frame(rid, conv, cmid, payload);
  f.mutable_send()->set_reply_to_sequence(reply_to);
  return f;
}

uint64_t accepted_seq(const std::optional<v1::ServerFrame>& f) {
  REQUIRE(f);
  INFO(f->DebugString());
  REQUIRE(f->has_accepted());
  return f->accepted().server_sequence();
}

} // namespace

TEST_CASE("a_reply_keeps_its_reference_live_and_by_sync") {
  node n;
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "phone");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::json);
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());

  CHECK(accepted_seq(a.call(send_frame(3, conv, "q", "question"),
                            frame_format::json))
        == 1);
  auto q = next_message(b);
  REQUIRE(q);
  CHECK(q->reply_to_sequence() == 0);
  // Bob answers through the connection actor (his first send there), then
  // once more on the direct path.
  CHECK(accepted_seq(b.call(reply_frame(2, conv, "r1", "answer", 1),
                            frame_format::binary))
        == 2);
  CHECK(accepted_seq(b.call(reply_frame(3, conv, "r2", "and more", 2),
                            frame_format::binary))
        == 3);
  for (uint64_t want : {1, 2}) {
    auto m = next_message(a);
    REQUIRE(m);
    CHECK(m->server_sequence() == want + 1);
    CHECK(m->reply_to_sequence() == want);
  }
  // Stored with it: a sync shows the same references.
  auto pages = sync_all(a, {{conv, 0}}, 100, frame_format::json, 10);
  std::vector<uint64_t> refs;
  for (auto& p : pages)
    for (auto& m : p.messages())
      refs.push_back(m.reply_to_sequence());
  CHECK(refs == std::vector<uint64_t>{0, 1, 2});
}

TEST_CASE("a_reply_to_a_message_past_the_head_or_before_joining_is_refused") {
  node n;
  auto ann = n.account("ann", "phone");
  n.account("ben", "phone");
  auto cat = n.account("cat", "phone");
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, ann), frame_format::binary)->has_welcome());
  v1::ClientFrame create;
  create.set_request_id(2);
  create.mutable_group_create()->set_name("book club");
  create.mutable_group_create()->add_usernames("ben");
  auto created = a.call(create, frame_format::binary);
  REQUIRE(created);
  REQUIRE(created->has_accepted());
  auto conv = created->accepted().conversation_id(); // CREATED is 1
  CHECK(accepted_seq(a.call(send_frame(3, conv, "m2", "before cat"),
                            frame_format::binary))
        == 2);
  v1::ClientFrame add;
  add.set_request_id(4);
  add.mutable_group_change()->set_conversation_id(conv);
  add.mutable_group_change()->set_change(v1::Membership::CHANGE_ADDED);
  add.mutable_group_change()->add_usernames("cat");
  CHECK(accepted_seq(a.call(add, frame_format::binary)) == 3);

  for (auto fmt : {frame_format::json, frame_format::binary}) {
    // Past the head, from a member: refused, nothing stored.
    CHECK(error_of(a.call(reply_frame(5, conv, "ahead", "x", 99), fmt))
          == v1::Error::CODE_BAD_FRAME);
  }
  ws_client c{n.port};
  REQUIRE(c.call(hello(1, cat), frame_format::json)->has_welcome());
  // Cat joined at 3: message 2 is outside her window.
  CHECK(error_of(c.call(reply_frame(2, conv, "old", "x", 2),
                        frame_format::json))
        == v1::Error::CODE_FORBIDDEN);
  CHECK(accepted_seq(c.call(reply_frame(3, conv, "hi", "welcome me", 3),
                            frame_format::json))
        == 4);
  // Again on cat's direct path, now that a send there was accepted.
  CHECK(error_of(c.call(reply_frame(4, conv, "old2", "x", 1),
                        frame_format::binary))
        == v1::Error::CODE_FORBIDDEN);
  CHECK(error_of(c.call(reply_frame(5, conv, "ahead2", "x", 5),
                        frame_format::binary))
        == v1::Error::CODE_BAD_FRAME);
  // Nothing refused took a sequence.
  CHECK(accepted_seq(a.call(reply_frame(6, conv, "m5", "ok", 4),
                            frame_format::binary))
        == 5);
}

TEST_CASE("a_media_send_is_refused_and_nothing_is_stored") {
  node n;
  auto alice = n.account("alice", "phone");
  n.account("bob", "phone");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  uint32_t rid = 10;
  auto media_kind = [&](const std::string& cmid) {
    auto f = send_frame(++rid, conv, cmid, "bytes");
    f.mutable_send()->set_kind(v1::MESSAGE_KIND_MEDIA);
    return f;
  };
  auto media_ref = [&](const std::string& cmid) {
    auto f = send_frame(++rid, conv, cmid, "caption");
    f.mutable_send()->set_kind(v1::MESSAGE_KIND_TEXT);
    f.mutable_send()->mutable_media()->set_media_id("m-1");
    return f;
  };
  CHECK(error_of(a.call(media_kind("k1"), frame_format::json))
        == v1::Error::CODE_UNIMPLEMENTED);
  CHECK(error_of(a.call(media_ref("r1"), frame_format::binary))
        == v1::Error::CODE_UNIMPLEMENTED);
  CHECK(accepted_seq(a.call(send_frame(++rid, conv, "t1", "text"),
                            frame_format::binary))
        == 1);
  // The direct path (open now) refuses them the same way.
  CHECK(error_of(a.call(media_kind("k2"), frame_format::binary))
        == v1::Error::CODE_UNIMPLEMENTED);
  CHECK(error_of(a.call(media_ref("r2"), frame_format::binary))
        == v1::Error::CODE_UNIMPLEMENTED);
  // A refused media send did not reserve its key or a sequence.
  CHECK(accepted_seq(a.call(send_frame(++rid, conv, "k1", "text now"),
                            frame_format::binary))
        == 2);
  auto pages = sync_all(a, {{conv, 0}}, 100, frame_format::binary, 100);
  size_t stored = 0;
  for (auto& p : pages)
    for (auto& m : p.messages()) {
      ++stored;
      CHECK(m.kind() != v1::MESSAGE_KIND_MEDIA);
      CHECK_FALSE(m.has_media());
    }
  CHECK(stored == 2);
}

TEST_CASE("reusing_a_client_message_id_for_other_content_is_a_conflict_"
          "before_and_after_a_restart") {
  node n;
  auto alice = n.account("alice", "phone");
  n.account("bob", "phone");
  std::optional<ws_client> a;
  a.emplace(n.port);
  auto conv = open_chat(*a, alice, "bob", frame_format::json);
  CHECK(accepted_seq(a->call(send_frame(3, conv, "c-1", "hello"),
                             frame_format::json))
        == 1);
  auto check_all = [&](uint32_t rid) {
    for (auto fmt : {frame_format::json, frame_format::binary}) {
      // The same request again: a retry, answered with the original.
      auto same = a->call(send_frame(++rid, conv, "c-1", "hello"), fmt);
      CHECK(accepted_seq(same) == 1);
      CHECK(same->accepted().deduplicated());
      // Other payload, other kind, other reference: not a retry.
      CHECK(error_of(a->call(send_frame(++rid, conv, "c-1", "goodbye"), fmt))
            == v1::Error::CODE_CONFLICT);
      auto kind = send_frame(++rid, conv, "c-1", "hello");
      kind.mutable_send()->set_kind(v1::MESSAGE_KIND_UNSPECIFIED);
      CHECK(error_of(a->call(kind, fmt)) == v1::Error::CODE_CONFLICT);
      CHECK(error_of(a->call(reply_frame(++rid, conv, "c-1", "hello", 1), fmt))
            == v1::Error::CODE_CONFLICT);
    }
  };
  check_all(10); // answered from the conversation's memory
  // Two different requests with one key in flight at once: the first is
  // the message, the second a conflict (whichever way it finds the first).
  a->send(send_frame(30, conv, "c-2", "one"), frame_format::binary);
  a->send(send_frame(31, conv, "c-2", "two"), frame_format::binary);
  std::optional<v1::ServerFrame> first, second;
  for (int i = 0; i < 10 && (!first || !second); ++i) {
    auto f = a->read();
    REQUIRE(f);
    (f->request_id() == 30 ? first : second) = f;
  }
  CHECK(accepted_seq(first) == 2);
  CHECK(error_of(second) == v1::Error::CODE_CONFLICT);

  a.reset();
  n.restart(); // the answers now come from the store's records
  a.emplace(n.port);
  REQUIRE(a->call(hello(1, alice), frame_format::json)->has_welcome());
  check_all(40);
  auto two = a->call(send_frame(60, conv, "c-2", "two"), frame_format::binary);
  CHECK(error_of(two) == v1::Error::CODE_CONFLICT);
  auto one = a->call(send_frame(61, conv, "c-2", "one"), frame_format::binary);
  CHECK(accepted_seq(one) == 2);
  CHECK(one->accepted().deduplicated());
}

TEST_CASE("a_deduplicated_retry_does_not_spend_the_send_budget") {
  // Three sends at once, no refill worth counting during the test.
  node n{{"--parley.limit-send-device=1/min,3",
          "--parley.limit-send-user=1000/s,1000"}};
  auto alice = n.account("alice", "phone");
  n.account("bob", "phone");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::json);
  CHECK(accepted_seq(a.call(send_frame(3, conv, "a", "first"),
                            frame_format::json))
        == 1);
  // Ten retries, through the connection actor and the direct path: each
  // is answered from the idempotency record and gives its token back.
  uint32_t rid = 10;
  for (int i = 0; i < 10; ++i) {
    auto fmt = i % 2 ? frame_format::binary : frame_format::json;
    auto r = a.call(send_frame(++rid, conv, "a", "first"), fmt);
    CHECK(accepted_seq(r) == 1);
    CHECK(r->accepted().deduplicated());
  }
  // So two new messages still fit, and the budget then ends as configured.
  CHECK(accepted_seq(a.call(send_frame(++rid, conv, "b", "second"),
                            frame_format::binary))
        == 2);
  CHECK(accepted_seq(a.call(send_frame(++rid, conv, "c", "third"),
                            frame_format::json))
        == 3);
  auto refused = a.call(send_frame(++rid, conv, "d", "fourth"),
                        frame_format::binary);
  CHECK(error_of(refused) == v1::Error::CODE_RATE_LIMITED);
}

TEST_CASE("a_group_create_or_change_naming_too_many_members_is_refused") {
  // Its MEMBERSHIP event would not fit every frame the server may send.
  node n{{"--parley.no-rate-limits"}};
  auto ann = n.account("ann", "phone");
  n.account("ben", "phone");
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, ann), frame_format::binary)->has_welcome());
  v1::ClientFrame create;
  create.set_request_id(2);
  create.mutable_group_create()->set_name("too many");
  for (uint64_t id = 1; id <= 5001; ++id)
    create.mutable_group_create()->add_user_ids(id);
  auto refused = a.call(create, frame_format::binary);
  CHECK(error_of(refused) == v1::Error::CODE_TOO_LARGE);
  CHECK(refused->error().message().find("split") != std::string::npos);
  create.set_request_id(3);
  create.mutable_group_create()->clear_user_ids();
  create.mutable_group_create()->add_usernames("ben");
  auto created = a.call(create, frame_format::binary);
  REQUIRE(created);
  REQUIRE(created->has_accepted());
  v1::ClientFrame add;
  add.set_request_id(4);
  add.mutable_group_change()->set_conversation_id(
    created->accepted().conversation_id());
  add.mutable_group_change()->set_change(v1::Membership::CHANGE_ADDED);
  for (uint64_t id = 1; id <= 5001; ++id)
    add.mutable_group_change()->add_user_ids(id);
  CHECK(error_of(a.call(add, frame_format::binary))
        == v1::Error::CODE_TOO_LARGE);
}
