// Issue 20: a send's request digest (kept with its idempotency record, so
// that a reused client_message_id with other content is a conflict, not a
// retry) and its reply reference, on disk and in the answers' cache.

#include <doctest/doctest.h>

#include <set>
#include <string>

#include "actors/send_keys.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"

using namespace parley;

namespace {

stored_message text(sequence seq, std::string cmid, std::string payload,
                    sequence reply_to = 0) {
  stored_message m;
  m.conversation = 9;
  m.seq = seq;
  m.sender_user = 7;
  m.sender_device = 2;
  m.client_message_id = std::move(cmid);
  m.sent_at_ms = 5000 + static_cast<int64_t>(seq);
  m.kind = 1;
  m.payload = std::move(payload);
  m.reply_to = reply_to;
  return m;
}

} // namespace

TEST_CASE("send digests differ in kind, payload and reply reference") {
  std::set<uint64_t> seen;
  for (int32_t kind : {0, 1, 2})
    for (std::string payload : {std::string{}, std::string{"a"},
                                std::string{"b"}, std::string{"ab"},
                                std::string(70000, 'x')})
      for (sequence reply : {0u, 1u, 2u, 256u})
        CHECK(seen.insert(store::send_digest(kind, payload, reply)).second);
  CHECK(store::send_digest(1, "hello", 3) == store::send_digest(1, "hello", 3));
  CHECK(store::send_digest(1, "hello", 3) != 0);
  // The payload's bytes cannot pose as the fixed fields: the digest covers
  // the kind and reference apart from the payload.
  CHECK(store::send_digest(1, std::string(8, '\0'), 0)
        != store::send_digest(1, "", 0));
}

TEST_CASE("send digests are pinned: they are kept on disk") {
  // DO NOT CHANGE: records on disk carry these values; a different
  // function would turn every retry of an old message into a conflict.
  // The first 8 bytes (big-endian) of BLAKE2b-128 over the kind and the
  // reference as big-endian u64s, then the payload; in Python:
  // hashlib.blake2b(struct.pack('>QQ', 1, 0) + b'hello', digest_size=16)
  CHECK(store::send_digest(1, "hello", 0) == 0x7a84ec7a60678698ULL);
}

TEST_CASE("the idempotency record keeps the request digest and the message "
          "its reply reference") {
  memory_backend kv;
  write_batch b;
  auto digest = store::send_digest(1, "answer", 1);
  store::add_message(b, text(1, "first", "question"));
  store::add_message(b, text(2, "second", "answer", 1), digest);
  REQUIRE_FALSE(kv.write(b, true));

  auto hit = store::lookup_idempotency(kv, 9, 7, 2, "second");
  REQUIRE(hit);
  CHECK(hit->found);
  CHECK(hit->seq == 2);
  CHECK(hit->digest == digest);
  // Written without a digest (as before it existed): 0, which matches any.
  auto old = store::lookup_idempotency(kv, 9, 7, 2, "first");
  REQUIRE(old);
  CHECK(old->found);
  CHECK(old->digest == 0);

  auto msgs = store::fetch_messages(kv, 9, 0, 10);
  REQUIRE(msgs);
  REQUIRE(msgs->size() == 2);
  CHECK((*msgs)[0].reply_to == 0);
  CHECK((*msgs)[1].reply_to == 1);
  CHECK((*msgs)[1].payload == "answer");
}

TEST_CASE("a corrupt request digest reads as storage corruption") {
  memory_backend kv;
  store::v1::IdempotencyRecord rec;
  rec.set_server_sequence(1);
  rec.set_accepted_at_ms(10);
  for (std::string bad : {std::string("abc"), std::string(9, 'x')}) {
    rec.set_request_digest(bad);
    write_batch b;
    b.put(keys::idempotency(9, 7, 2, "m"), rec.SerializeAsString());
    REQUIRE_FALSE(kv.write(b, true));
    auto hit = store::lookup_idempotency(kv, 9, 7, 2, "m");
    CHECK_FALSE(hit);
  }
}

TEST_CASE("recent answers keep the digest of the request they answered") {
  recent_sends rs{2};
  send_key a{1, 1, "a"};
  send_key b{1, 1, "b"};
  send_result ra{"id-a", 1, 100, true};
  rs.add(a, ra, 42);
  rs.add(b, send_result{"id-b", 2, 101, true});
  auto hit = rs.find_with_digest(a);
  REQUIRE(hit.res);
  CHECK(hit.res->server_sequence == 1);
  CHECK(hit.digest == 42);
  CHECK(rs.find_with_digest(b).digest == 0);
  // The first answer wins, digest included.
  rs.add(a, send_result{"id-x", 9, 1, true}, 7);
  CHECK(rs.find_with_digest(a).digest == 42);
  CHECK(rs.find(a)->server_sequence == 1);
  CHECK_FALSE(rs.find_with_digest(send_key{1, 1, "c"}).res);
}
