// Every message type that may cross a node survives CAF's binary
// serialization (issue 21, item 3): for each type id of Parley's block
// (runtime/core/type_ids.hpp, caf::id_block::parley [begin, end)) a sample value
// whose every field differs from the default is serialized and read back,
// on its own and inside a caf::message as the middleman sends it, and must
// come back equal field by field. The fields are found by the aggregate's
// shape (structured bindings), not by its inspect, so an inspect that
// leaves a field out, or writes only a type name (as the shared_ptr
// wrappers of the old local_messages.hpp did), fails here. A type added to
// the block without a sample below fails too, naming it.

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>
#include <caf/meta/annotation.hpp>
#include <caf/type_id.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/type_ids.hpp"
#include "aggregate_fields.hpp"

using namespace parley;
using namespace parley::test;

namespace {

// -- samples: every field differs from its default ------------------------------

/// sample<T>::make(): a value of T whose every field differs from T{}'s.
template <class T>
struct sample;

template <class T, class = void>
struct has_sample : std::false_type {};

template <class T>
struct has_sample<T, std::void_t<decltype(sample<T>::make())>>
  : std::true_type {};

#define PARLEY_SAMPLE(type)                                                   \
  template <>                                                                 \
  struct sample<type> {                                                       \
    static type make();                                                       \
  };                                                                          \
  type sample<type>::make()

PARLEY_SAMPLE(kv_op) {
  return kv_op{true, std::string("k\0ey", 4), "value", true, "vkey", 5};
}

PARLEY_SAMPLE(write_batch) {
  write_batch b;
  b.ops.push_back(sample<kv_op>::make());
  b.put("other", "v2");
  return b;
}

PARLEY_SAMPLE(group_change) {
  return group_change{7, 11, 13, {17, 19}, "name", "description", "req-1"};
}

PARLEY_SAMPLE(member) {
  return member{23, role_admin, 29, 31};
}

PARLEY_SAMPLE(group_info) {
  return group_info{37, "group", "about", 41, {sample<member>::make()}, 43,
                    47};
}

PARLEY_SAMPLE(receipt_cursor) {
  return receipt_cursor{53, 2, 59};
}

PARLEY_SAMPLE(receipt_event) {
  return receipt_event{61, 67, 2, 71, 73, false, 79, 83, 89, 97};
}

PARLEY_SAMPLE(membership_event) {
  return membership_event{661, 673, 677, role_admin, 683, 691};
}

PARLEY_SAMPLE(conversation_snapshot) {
  conversation_snapshot s;
  s.exists = true;
  s.head = 101;
  s.dispatched = 103;
  s.members = {sample<member>::make()};
  s.swept = 107;
  s.head_sent_at_ms = 109;
  s.receipts = {sample<receipt_cursor>::make()};
  s.kind = conversation_group;
  s.name = "name";
  s.description = "description";
  s.created_at_ms = 113;
  s.creator = 127;
  s.create_request_id = "req-2";
  s.pending_memberships = {sample<membership_event>::make()};
  return s;
}

PARLEY_SAMPLE(stored_message) {
  return stored_message{131, 137, 139, 149, "cmid", 151, 2, "payload", 157};
}

PARLEY_SAMPLE(send_request) {
  return send_request{163, 167, 173, "cmid-2", 3, "payload-2", 179, 181};
}

PARLEY_SAMPLE(send_result) {
  return send_result{"131-137", 191, 193, true};
}

PARLEY_SAMPLE(idempotency_hit) {
  return idempotency_hit{true, 197, 199, 211};
}

PARLEY_SAMPLE(idempotency_key) {
  return idempotency_key{223, 227, "cmid-3"};
}

PARLEY_SAMPLE(idempotency_sweep) {
  return idempotency_sweep{229, true, {sample<idempotency_key>::make()}};
}

PARLEY_SAMPLE(principal) {
  return principal{233, 239, false, send_limit{751, 757}};
}

PARLEY_SAMPLE(login_result) {
  return login_result{241, 251, "token"};
}

PARLEY_SAMPLE(device_info) {
  return device_info{257, "phone", 263, true, 761};
}

PARLEY_SAMPLE(sync_request) {
  return sync_request{{269, 271}, {277, 281}, 7, "continue", false, 1024, true};
}

PARLEY_SAMPLE(inbox_entry) {
  return inbox_entry{283, 293, 307, 311, 313, 317, true, true, true};
}

PARLEY_SAMPLE(projection_event) {
  return projection_event{false, sample<stored_message>::make(),
                          sample<receipt_event>::make(), {331, 337}};
}

PARLEY_SAMPLE(projection_batch) {
  return projection_batch{{sample<projection_event>::make()}};
}

PARLEY_SAMPLE(sync_page) {
  return sync_page{{sample<inbox_entry>::make()},
                   {sample<stored_message>::make()},
                   "continue",
                   {sample<receipt_event>::make()},
                   347};
}

PARLEY_SAMPLE(conversation_status) {
  return conversation_status{349, 353, 359, 367};
}

PARLEY_SAMPLE(writer_stats) {
  return writer_stats{373, 379, 383, 389};
}

PARLEY_SAMPLE(device_status) {
  return device_status{true, 397, 401, 409};
}

PARLEY_SAMPLE(partition_map) {
  return partition_map{419, {1, 2, 1}};
}

PARLEY_SAMPLE(placement_key) {
  return placement_key{id_kind_user, 421};
}

PARLEY_SAMPLE(route) {
  return route{431, 433, 439, true};
}

PARLEY_SAMPLE(tagged_send) {
  return tagged_send{457, sample<send_request>::make()};
}

PARLEY_SAMPLE(send_answer) {
  return send_answer{461, sample<send_result>::make(),
                     caf::make_error(errc::unavailable, "retry")};
}

PARLEY_SAMPLE(tagged_receipt) {
  return tagged_receipt{463, 467, 479, 487, 2, 491, true};
}

PARLEY_SAMPLE(receipt_answer) {
  return receipt_answer{499, 503, caf::make_error(errc::cursor_ahead, "no")};
}

PARLEY_SAMPLE(tagged_commit) {
  return tagged_commit{509, 521, 523, sample<write_batch>::make()};
}

PARLEY_SAMPLE(commit_answer) {
  return commit_answer{541, 547,
                       caf::make_error(errc::storage_fenced, "fenced",
                                       uint64_t{557})};
}

PARLEY_SAMPLE(conv_query) {
  return conv_query{461, conv_read_probe, 463, 467, 479, true,
                    sample<inbox_entry>::make(), conv_start_recent, 487};
}

PARLEY_SAMPLE(conv_reads) {
  return conv_reads{491, {sample<conv_query>::make()}, 499, 503, 509};
}

PARLEY_SAMPLE(conv_answer) {
  return conv_answer{521, 523, true, sample<inbox_entry>::make(), true,
                     {sample<receipt_cursor>::make()},
                     {sample<stored_message>::make()}, 541, 547, true};
}

PARLEY_SAMPLE(conv_answers) {
  return conv_answers{557, {sample<conv_answer>::make()}};
}

PARLEY_SAMPLE(user_reads) {
  return user_reads{563, user_read_sharing, 569, {571}, {577}};
}

PARLEY_SAMPLE(user_answers) {
  return user_answers{587, {sample<member>::make()}, {593},
                      {sample<inbox_entry>::make()}, {599}, {601}};
}

PARLEY_SAMPLE(account_name_step) {
  return account_name_step{"name", true};
}

PARLEY_SAMPLE(account_register_step) {
  return account_register_step{"name", "password", true, true};
}

PARLEY_SAMPLE(account_login_step) {
  return account_login_step{701, "password", "phone", true};
}

PARLEY_SAMPLE(account_block_step) {
  return account_block_step{709, true, true};
}

PARLEY_SAMPLE(account_setting_step) {
  return account_setting_step{719, false, true};
}

PARLEY_SAMPLE(account_auth_step) {
  return account_auth_step{"token", true};
}

PARLEY_SAMPLE(account_devices_step) {
  return account_devices_step{727, true};
}

PARLEY_SAMPLE(account_revoke_step) {
  return account_revoke_step{733, 739, true};
}

PARLEY_SAMPLE(account_id_step) {
  return account_id_step{743, true};
}

PARLEY_SAMPLE(std::vector<device_info>) {
  auto second = sample<device_info>::make();
  second.device = 443;
  return {sample<device_info>::make(), second};
}

PARLEY_SAMPLE(inbox_row) {
  return inbox_row{701, sample<inbox_entry>::make()};
}

PARLEY_SAMPLE(inbox_rows) {
  return inbox_rows{709, {sample<inbox_row>::make()}};
}

PARLEY_SAMPLE(inbox_query) {
  return inbox_query{inbox_query_flags, 719, 727, true, true, true};
}

PARLEY_SAMPLE(lease_state) {
  return lease_state{false, 733};
}

PARLEY_SAMPLE(send_limit) {
  return send_limit{769, 773};
}

PARLEY_SAMPLE(account_view) {
  return account_view{787, "viewed", true, sample<send_limit>::make(),
                      {sample<device_info>::make()}};
}

PARLEY_SAMPLE(account_show_step) {
  return account_show_step{797, true};
}

PARLEY_SAMPLE(account_limit_step) {
  return account_limit_step{809, sample<send_limit>::make(), true};
}

PARLEY_SAMPLE(std::vector<inbox_entry>) {
  return {sample<inbox_entry>::make()};
}

PARLEY_SAMPLE(std::vector<stored_message>) {
  return {sample<stored_message>::make()};
}

PARLEY_SAMPLE(std::vector<uint64_t>) {
  return {449, 0, 457};
}

// -- the check ---------------------------------------------------------------------

/// What is wrong with T on the way between two nodes (empty: nothing).
/// `sys` (if given) knows Parley's types: the value also travels inside a
/// caf::message, as the middleman sends it.
template <class T>
std::vector<std::string> problems(const T& x, caf::actor_system* sys) {
  std::vector<std::string> out;
  auto say = [&](auto&&... xs) {
    std::ostringstream os;
    (os << ... << xs);
    out.push_back(os.str());
  };
  if constexpr (is_struct_v<T>) {
    constexpr auto n = field_count<T>();
    for (auto i : default_fields(x, std::make_index_sequence<n>{}))
      say("the sample leaves field ", i, " at its default (fix the sample)");
    field_counter counter;
    T copy = x;
    inspect(counter, copy);
    if (counter.values != n)
      say("inspect passes ", counter.values, " values for ", n, " fields");
  } else if constexpr (is_vector<T>::value) {
    if (x.empty())
      say("the sample is empty (fix the sample)");
  }
  auto bytes = to_bytes(nullptr, x);
  if (bytes == to_bytes(nullptr, T{}))
    say("a non-default value serializes as the default does");
  T back{};
  if (auto err = from_bytes(nullptr, bytes, back))
    say("cannot deserialize: ", caf::to_string(err));
  else if (!deep_equal(back, x))
    say("the round trip changes the value");
  if (sys) {
    auto msg = caf::make_message(x);
    auto mbytes = to_bytes(sys, msg);
    caf::message mback;
    if (auto err = from_bytes(sys, mbytes, mback))
      say("cannot deserialize it in a message: ", caf::to_string(err));
    else if (!mback.match_elements<T>())
      say("a message of it comes back as ", to_string(mback));
    else if (!deep_equal(mback.get_as<T>(0), x))
      say("the round trip in a message changes the value");
  }
  return out;
}

/// Checks the type with id I; false if it has no sample.
template <caf::type_id_t I>
bool check_type_id(caf::actor_system& sys) {
  using type = typename caf::type_by_id<I>::type;
  std::string name = caf::type_name_by_id<I>::value;
  if constexpr (!has_sample<type>::value) {
    FAIL_CHECK("type id " << I << " (" << name
                              << ") has no sample in message_types_test.cpp");
    return false;
  } else {
    auto found = problems(sample<type>::make(), &sys);
    for (auto& p : found)
      FAIL_CHECK(name << ": " << p);
    return true;
  }
}

template <long... Is>
size_t check_block(caf::actor_system& sys, caf::detail::int_list<Is...>) {
  return (size_t{0} + ... + (check_type_id<Is>(sys) ? 1 : 0));
}

// -- types that must fail ----------------------------------------------------------

/// A wrapper around a pointer whose inspect writes only its type name.
struct opaque_ref {
  std::shared_ptr<int> target;
  uint64_t weight = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, opaque_ref& x) {
  return f(caf::meta::type_name("opaque_ref"));
}

/// A struct whose inspect forgets its last field.
struct half_inspected {
  uint64_t id = 0;
  std::string note;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, half_inspected& x) {
  return f(caf::meta::type_name("half_inspected"), x.id);
}

/// A struct whose inspect writes one field twice and another not at all.
struct twice_inspected {
  uint64_t id = 0;
  uint64_t epoch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, twice_inspected& x) {
  return f(caf::meta::type_name("twice_inspected"), x.id, x.id);
}

bool mentions(const std::vector<std::string>& xs, const std::string& what) {
  for (auto& x : xs)
    if (x.find(what) != std::string::npos)
      return true;
  return false;
}

} // namespace

TEST_CASE("every type of Parley's type-id block survives serialization") {
  using block = caf::id_block::parley;
  static_assert(block::end > block::begin, "the block is empty");
  caf::actor_system_config cfg;
  cfg.add_message_types<block>();
  caf::actor_system sys{cfg};
  auto covered = check_block(
    sys, typename caf::detail::il_range<block::begin, block::end>::type{});
  CHECK(covered == size_t{block::end - block::begin});
  MESSAGE("types checked: " << covered << " of ids " << block::begin << "-"
                            << block::end - 1);
}

TEST_CASE("the serialization check catches a type that is not serializable") {
  SUBCASE("inspect writes only a type name") {
    opaque_ref x{std::make_shared<int>(5), 7};
    auto found = problems(x, nullptr);
    CHECK(mentions(found, "inspect passes 0 values for 2 fields"));
    CHECK(mentions(found, "serializes as the default does"));
    CHECK(mentions(found, "the round trip changes the value"));
  }
  SUBCASE("inspect leaves a field out") {
    auto found = problems(half_inspected{3, "note"}, nullptr);
    CHECK(mentions(found, "inspect passes 1 values for 2 fields"));
    CHECK(mentions(found, "the round trip changes the value"));
    CHECK_FALSE(mentions(found, "serializes as the default does"));
  }
  SUBCASE("inspect writes a field twice and another not at all") {
    auto found = problems(twice_inspected{3, 4}, nullptr);
    CHECK_FALSE(mentions(found, "values for")); // the count matches
    CHECK(mentions(found, "the round trip changes the value"));
  }
  SUBCASE("a sample that leaves a field at its default") {
    auto weak = sample<stored_message>::make();
    weak.reply_to = 0;
    auto found = problems(weak, nullptr);
    CHECK(found.size() == 1);
    CHECK(mentions(found, "field 8 at its default"));
  }
  SUBCASE("a sound type passes") {
    CHECK(problems(sample<sync_page>::make(), nullptr).empty());
    CHECK(problems(sample<write_batch>::make(), nullptr).empty());
  }
}
