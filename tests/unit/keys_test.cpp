#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "runtime/core/messages.hpp"
#include "runtime/store/keys.hpp"

using namespace parley;

TEST_CASE("keys sort by (conversation, seq) numerically") {
  std::vector<std::pair<uint64_t, uint64_t>> ids{
    {0, 1}, {0, 2}, {0, 255}, {0, 256}, {0, 65536}, {1, 0}, {1, 1},
    {255, 7}, {256, 1}, {1ull << 32, 1}, {UINT64_MAX, 0},
    {UINT64_MAX, UINT64_MAX}};
  std::vector<std::string> ks;
  for (auto [c, s] : ids)
    ks.push_back(keys::message(c, s));
  auto sorted = ks;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == ks); // bytewise order == numeric order
  for (size_t i = 0; i < ids.size(); ++i) {
    auto d = keys::decode_message(ks[i]);
    REQUIRE(d);
    CHECK(*d == ids[i]);
  }
}

TEST_CASE("random message keys sort like their numbers") {
  std::mt19937_64 rng{42};
  std::vector<std::pair<uint64_t, uint64_t>> ids;
  for (int i = 0; i < 2000; ++i)
    ids.emplace_back(rng() >> (rng() % 64), rng() >> (rng() % 64));
  auto by_key = ids;
  std::sort(by_key.begin(), by_key.end(), [](auto& a, auto& b) {
    return keys::message(a.first, a.second) < keys::message(b.first, b.second);
  });
  std::sort(ids.begin(), ids.end());
  CHECK(by_key == ids);
}

TEST_CASE("a conversation's messages are contiguous and bounded by the next") {
  auto last_of_1 = keys::message(1, UINT64_MAX);
  CHECK(keys::message(1, 0) < last_of_1);
  CHECK(last_of_1 < keys::message(2, 0));
  // Tables never interleave: members < conversations < idempotency <
  // messages < outbox.
  CHECK(keys::member(UINT64_MAX, UINT64_MAX) < keys::conversation(0));
  CHECK(keys::conversation(UINT64_MAX) < keys::idempotency(0, 0, 0, ""));
  CHECK(keys::idempotency(UINT64_MAX, UINT64_MAX, UINT64_MAX, "\xff\xff")
        < keys::message(0, 0));
  CHECK(keys::message(UINT64_MAX, UINT64_MAX) < keys::outbox(0));
}

TEST_CASE("idempotency keys group by conversation, then sender device") {
  CHECK(keys::idempotency(1, 2, 3, "zzz") < keys::idempotency(1, 2, 4, "a"));
  CHECK(keys::idempotency(1, 9, 9, "a") < keys::idempotency(2, 0, 0, ""));
  CHECK(keys::idempotency(1, 2, 3, "a") != keys::idempotency(1, 2, 3, "b"));
}

TEST_CASE("decoders refuse keys of other tables and wrong sizes") {
  CHECK_FALSE(keys::decode_message(keys::member(1, 2)));
  CHECK_FALSE(keys::decode_message(""));
  CHECK_FALSE(keys::decode_message(keys::message(1, 2).substr(0, 16)));
  CHECK_FALSE(keys::decode_message(keys::message(1, 2) + "x"));
  CHECK_FALSE(keys::decode_member(keys::message(1, 2)));
  CHECK_FALSE(keys::read_u64("1234567", 0));
  CHECK_FALSE(keys::read_u64("12345678", 1));
  CHECK(keys::read_u64("12345678", 0));
}

TEST_CASE("prefix_end bounds every key with the prefix") {
  CHECK(keys::prefix_end("ab") == "ac");
  CHECK(keys::prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(keys::prefix_end(std::string("\xff\xff", 2)).empty());
}

TEST_CASE("keys keep their on-disk bytes: a tag, then big-endian numbers") {
  using namespace std::string_literals;
  const uint64_t a = 0x0102030405060708, b = 0x1112131415161718,
                 c = 0x2122232425262728;
  auto be = [](uint64_t x) {
    std::string s;
    for (int shift = 56; shift >= 0; shift -= 8)
      s.push_back(static_cast<char>((x >> shift) & 0xFF));
    return s;
  };
  CHECK(keys::message(a, b) == "m"s + be(a) + be(b));
  CHECK(keys::message(a, b) == "m\x01\x02\x03\x04\x05\x06\x07\x08"
                               "\x11\x12\x13\x14\x15\x16\x17\x18"s);
  CHECK(keys::idempotency(a, b, c, "cm1") == "i"s + be(a) + be(b) + be(c) + "cm1");
  CHECK(keys::delivered(a, b, c) == "r"s + be(a) + be(b) + be(c));
  CHECK(keys::receipt(a, b, 2) == "s"s + be(a) + be(b) + "\x02"s);
  CHECK(keys::outbox(a) == "o"s + be(a));
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
