#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <tuple>
#include <vector>

#include "runtime/core/messages.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/keys.hpp"

using namespace parley;

namespace {

/// Message ids in key order: the conversation's slot, then the numbers.
bool key_order(const std::pair<uint64_t, uint64_t>& a,
               const std::pair<uint64_t, uint64_t>& b) {
  auto sa = keys::conversation_slot(a.first);
  auto sb = keys::conversation_slot(b.first);
  return std::tie(sa, a.first, a.second) < std::tie(sb, b.first, b.second);
}

} // namespace

TEST_CASE("keys sort by (slot, conversation, seq), the numbers numerically") {
  std::vector<std::pair<uint64_t, uint64_t>> ids{
    {0, 1}, {0, 2}, {0, 255}, {0, 256}, {0, 65536}, {1, 0}, {1, 1},
    {255, 7}, {256, 1}, {1ull << 32, 1}, {UINT64_MAX, 0},
    {UINT64_MAX, UINT64_MAX}};
  std::sort(ids.begin(), ids.end(), key_order);
  std::vector<std::string> ks;
  for (auto [c, s] : ids)
    ks.push_back(keys::message(c, s));
  auto sorted = ks;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == ks); // bytewise order == (slot, conv, seq) order
  for (size_t i = 0; i < ids.size(); ++i) {
    auto d = keys::decode_message(ks[i]);
    REQUIRE(d);
    CHECK(*d == ids[i]);
  }
}

TEST_CASE("random message keys sort like their slots and numbers") {
  std::mt19937_64 rng{42};
  std::vector<std::pair<uint64_t, uint64_t>> ids;
  for (int i = 0; i < 2000; ++i)
    ids.emplace_back(rng() >> (rng() % 64), rng() >> (rng() % 64));
  // A few conversations with many sequences: within one, numeric order.
  for (uint64_t c : {3ull, 70000ull})
    for (int i = 0; i < 200; ++i)
      ids.emplace_back(c, rng() >> (rng() % 64));
  auto by_key = ids;
  std::sort(by_key.begin(), by_key.end(), [](auto& a, auto& b) {
    return keys::message(a.first, a.second) < keys::message(b.first, b.second);
  });
  std::sort(ids.begin(), ids.end(), key_order);
  CHECK(by_key == ids);
}

TEST_CASE("a conversation's records are contiguous, table by table") {
  for (uint64_t c : {uint64_t{0}, uint64_t{1}, uint64_t{255}, UINT64_MAX}) {
    CAPTURE(c);
    auto first = keys::conversation_records(keys::messages_tag, c);
    auto end = keys::prefix_end(first);
    CHECK(first <= keys::message(c, 0));
    CHECK(keys::message(c, 0) < keys::message(c, UINT64_MAX));
    CHECK(keys::message(c, UINT64_MAX) < end);
    auto next = keys::message(c + 1, 0);
    CHECK_FALSE((next >= first && next < end));
    // Tables never interleave within a slot: members < conversations <
    // sweep < idempotency < messages < outbox < receipts.
    CHECK(keys::member(c, UINT64_MAX) < keys::conversation(c));
    CHECK(keys::conversation(c) < keys::sweep(c));
    CHECK(keys::sweep(c) < keys::idempotency(c, 0, 0, ""));
    CHECK(keys::idempotency(c, UINT64_MAX, UINT64_MAX, "\xff\xff")
          < keys::message(c, 0));
    CHECK(keys::message(c, UINT64_MAX) < keys::outbox(c));
    CHECK(keys::outbox(c) < keys::receipt(c, 0, 0));
  }
}

TEST_CASE("idempotency keys group by conversation, then sender device") {
  CHECK(keys::idempotency(1, 2, 3, "zzz") < keys::idempotency(1, 2, 4, "a"));
  CHECK(keys::idempotency(1, 9, 9, "a") > keys::idempotency(1, 2, 0, ""));
  CHECK(keys::idempotency(1, 2, 3, "a") != keys::idempotency(1, 2, 3, "b"));
  auto of_1 = keys::conversation_records(keys::idempotency_tag, 1);
  CHECK(keys::idempotency(1, 9, 9, "a").compare(0, of_1.size(), of_1) == 0);
  CHECK(keys::idempotency(2, 9, 9, "a").compare(0, of_1.size(), of_1) != 0);
}

TEST_CASE("decoders refuse keys of other tables and wrong sizes") {
  CHECK_FALSE(keys::decode_message(keys::member(1, 2)));
  CHECK_FALSE(keys::decode_message(""));
  CHECK_FALSE(keys::decode_message(keys::message(1, 2).substr(0, 19)));
  CHECK_FALSE(keys::decode_message(keys::message(1, 2) + "x"));
  CHECK_FALSE(keys::decode_message(keys::message(1, 2).substr(3))); // layout 1
  CHECK_FALSE(keys::decode_member(keys::message(1, 2)));
  CHECK_FALSE(keys::decode_receipt(keys::receipt(1, 2, 1).substr(0, 20)));
  CHECK_FALSE(keys::decode_membership(keys::inbox(1, 2)));
  CHECK_FALSE(keys::decode_device(keys::membership(1, 2)));
  CHECK_FALSE(keys::decode_conversation(keys::outbox(1)));
  CHECK_FALSE(keys::read_u64("1234567", 0));
  CHECK_FALSE(keys::read_u64("12345678", 1));
  CHECK(keys::read_u64("12345678", 0));
}

TEST_CASE("decoders read back what the builders wrote") {
  const uint64_t a = 0x0102030405060708, b = 0xF1F2F3F4F5F6F7F8;
  CHECK(keys::decode_message(keys::message(a, b))
        == std::make_pair(conversation_id{a}, sequence{b}));
  CHECK(keys::decode_member(keys::member(a, b))
        == std::make_pair(conversation_id{a}, user_id{b}));
  CHECK(keys::decode_receipt(keys::receipt(a, b, keys::receipt_read))
        == std::make_pair(user_id{b}, keys::receipt_read));
  CHECK(keys::decode_membership(keys::membership(a, b))
        == std::make_pair(user_id{a}, conversation_id{b}));
  CHECK(keys::decode_device(keys::device(a, b))
        == std::make_pair(user_id{a}, device_id{b}));
  CHECK(keys::decode_conversation(keys::conversation(b)) == b);
}

TEST_CASE("every key builder prefixes its owner's slot") {
  using namespace std::string_literals;
  auto slot_bytes = [](uint16_t s) {
    return "P"s + static_cast<char>(s >> 8) + static_cast<char>(s & 0xFF);
  };
  for (uint64_t c :
       {uint64_t{0}, uint64_t{7}, uint64_t{123456789}, UINT64_MAX}) {
    CAPTURE(c);
    const uint64_t u = c ^ 0x5555;
    auto conv = slot_bytes(keys::conversation_slot(c));
    auto conv_slot = slot_of(placement_key::conversation(c));
    CHECK(keys::conversation_slot(c) == conv_slot);
    CHECK(keys::conversation_slot(c)
          == placement_hash(placement_key::conversation(c)) >> 48);
    for (auto k : {keys::member(c, u), keys::conversation(c), keys::sweep(c),
                   keys::idempotency(c, u, 3, "cm"), keys::message(c, 9),
                   keys::outbox(c), keys::receipt(c, u, 1)}) {
      CHECK(k.substr(0, 3) == conv);
      CHECK(keys::slot_of_key(k) == conv_slot);
    }
    auto user = slot_bytes(keys::user_slot(u));
    CHECK(keys::user_slot(u) == slot_of(placement_key::user(u)));
    for (auto k : {keys::device(u, 2), keys::user_name(u),
                   keys::membership(u, c), keys::delivered(u, 2, c),
                   keys::inbox(u, c), keys::inbox_flags(u, c)})
      CHECK(k.substr(0, 3) == user);
  }
  CHECK(keys::account("alice")
        == slot_bytes(slot_of(placement_key::username("alice"))) + "ualice");
  CHECK(keys::account("alice").substr(0, 3)
        != keys::account("bob").substr(0, 3)); // not a constant slot
  auto hash = std::string(32, '\x07');
  CHECK(keys::token(hash) == slot_bytes(keys::token_slot(hash)) + "t" + hash);
  CHECK(keys::counter("user")
        == slot_bytes(keys::counter_slot("user")) + "nuser");
  CHECK(keys::token_slot(hash) != keys::token_slot(std::string(32, '\x08')));
  // Meta keys stay unprefixed: node-level, in no partition.
  CHECK(keys::meta("layout") == "zlayout");
  CHECK_FALSE(keys::slot_of_key(keys::meta("layout")));
  CHECK(keys::table_of(keys::meta("layout")) == keys::meta_tag);
  CHECK(keys::table_of(keys::inbox(1, 2)) == keys::inbox_tag);
  CHECK(keys::table_of(keys::message(1, 2).substr(3)) == '\0'); // layout 1
}

TEST_CASE("prefix_end bounds every key with the prefix") {
  CHECK(keys::prefix_end("ab") == "ac");
  CHECK(keys::prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(keys::prefix_end(std::string("\xff\xff", 2)).empty());
}

TEST_CASE("keys keep their on-disk bytes: 'P', the owner's slot, a tag, "
          "then big-endian numbers") {
  using namespace std::string_literals;
  const uint64_t a = 0x0102030405060708, b = 0x1112131415161718,
                 c = 0x2122232425262728;
  auto be = [](uint64_t x) {
    std::string s;
    for (int shift = 56; shift >= 0; shift -= 8)
      s.push_back(static_cast<char>((x >> shift) & 0xFF));
    return s;
  };
  auto slot = [](uint16_t s) {
    return "P"s + static_cast<char>(s >> 8) + static_cast<char>(s & 0xFF);
  };
  // Pinned: conversation 42's placement hash is 0xBDD732262FEB6E95 and user
  // 42's 0x28EFE333B266F103 (tests/unit/placement_test.cpp).
  CHECK(keys::message(42, 1) == "P\xBD\xD7m"s + be(42) + be(1));
  CHECK(keys::inbox(42, 7) == "P\x28\xEFx"s + be(42) + be(7));
  auto sa = slot(keys::conversation_slot(a));
  CHECK(keys::message(a, b) == sa + "m"s + be(a) + be(b));
  CHECK(keys::message(a, b).substr(3) == "m\x01\x02\x03\x04\x05\x06\x07\x08"
                                         "\x11\x12\x13\x14\x15\x16\x17\x18"s);
  CHECK(keys::idempotency(a, b, c, "cm1")
        == sa + "i"s + be(a) + be(b) + be(c) + "cm1");
  CHECK(keys::delivered(a, b, c)
        == slot(keys::user_slot(a)) + "r"s + be(a) + be(b) + be(c));
  CHECK(keys::receipt(a, b, 2) == sa + "s"s + be(a) + be(b) + "\x02"s);
  CHECK(keys::outbox(a) == sa + "o"s + be(a));
  std::string out = "p";
  keys::append_u64(out, UINT64_MAX - 1);
  CHECK(out == "p\xff\xff\xff\xff\xff\xff\xff\xfe"s);
}

TEST_CASE("a server message id is the conversation and the sequence in hex") {
  CHECK(make_server_message_id(1, 0xab) == "0000000000000001"
                                            "00000000000000ab");
  CHECK(make_server_message_id(0x0123456789abcdef, 0xfedcba9876543210)
        == "0123456789abcdeffedcba9876543210");
  CHECK(make_server_message_id(UINT64_MAX, 0) == std::string(16, 'f')
                                                   + std::string(16, '0'));
}
