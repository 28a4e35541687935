// The accounts actor in single-partition steps (issue 21, item 7): for an
// account registered before ids were placed by username (its name's entry
// in one partition, its records in another), login, token auth, block and
// the read-receipts setting each read and write one partition per step,
// and in order: the name's partition (name -> id) at most once, first, then
// the id's. A step of a partition this node does not own under the actor's
// partition map is refused retryably, and a map change drops the cached
// user id counter of a partition that left (it is read afresh when the
// partition comes back).

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "parley/v1/store.pb.h"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "accounts_fixture.hpp"

using namespace parley;

namespace {

namespace pb = parley::store::v1;

constexpr uint32_t partitions = 64;

/// A memory store that logs every key read (got, the start of a scan or
/// last, each key visited or returned) and written, in order.
struct audit_backend : memory_backend {
  struct event {
    bool write = false;
    std::string key;
  };
  std::vector<event> log;

  caf::error write(const write_batch& batch, bool sync) override {
    for (auto& op : batch.ops)
      log.push_back({true, op.key});
    return memory_backend::write(batch, sync);
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    log.push_back({false, std::string(key)});
    return memory_backend::get(key);
  }

  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    log.push_back({false, std::string(from)});
    return memory_backend::scan(from, to,
                                [&](std::string_view k, std::string_view v) {
                                  log.push_back({false, std::string(k)});
                                  return f(k, v);
                                });
  }

  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    log.push_back({false, std::string(from)});
    auto r = memory_backend::last(from, to);
    if (r && *r)
      log.push_back({false, (*r)->first});
    return r;
  }
};

uint32_t partition_of_key(const std::string& key) {
  auto slot = keys::slot_of_key(key);
  REQUIRE(slot);
  return partition_of_slot(*slot, partitions);
}

uint32_t user_partition(user_id u) {
  return partition_of(placement_key::user(u), partitions);
}

uint32_t name_partition(const std::string& name) {
  return partition_of(placement_key::username(name), partitions);
}

/// The partitions an operation's keys went to, consecutive repeats merged
/// (its steps, in order).
std::vector<uint32_t> steps(const std::vector<audit_backend::event>& log) {
  std::vector<uint32_t> out;
  for (auto& e : log) {
    auto p = partition_of_key(e.key);
    if (out.empty() || out.back() != p)
      out.push_back(p);
  }
  return out;
}

/// The partitions written.
std::set<uint32_t> written(const std::vector<audit_backend::event>& log) {
  std::set<uint32_t> out;
  for (auto& e : log)
    if (e.write)
      out.insert(partition_of_key(e.key));
  return out;
}

/// An id (from 1 up) whose partition differs from `name`'s.
user_id old_id_for(const std::string& name) {
  user_id id = 1;
  while (user_partition(id) == name_partition(name))
    ++id;
  return id;
}

/// What a layout-2 store held for an account registered before ids were
/// placed by username: the whole record under the name, the name under id.
write_batch old_account(const std::string& name, user_id id) {
  write_batch b;
  pb::AccountRecord rec;
  rec.set_user_id(id);
  rec.set_password_hash(credentials::hash_password("correct horse", "min"));
  rec.set_created_at_ms(7);
  b.put(keys::account(name), rec.SerializeAsString());
  b.put(keys::user_name(id), name);
  b.put(keys::meta("layout"), std::string(7, '\0') + "\x02");
  return b;
}

struct fixture : sim::accounts_fixture<audit_backend> {
  explicit fixture(const write_batch& before = {}) {
    if (!before.ops.empty())
      REQUIRE_FALSE(disk->write(before, true));
    accounts_limits lim;
    lim.partitions = partitions;
    start(lim); // migrates `before` to layout 3
    disk->log.clear();
  }

  /// The events since the last call.
  std::vector<audit_backend::event> taken() {
    auto out = std::move(disk->log);
    disk->log.clear();
    return out;
  }

  std::pair<std::optional<login_result>, caf::error>
  login(const std::string& name, const std::string& password) {
    return ask<login_result>(login_atom::value, name, password,
                             std::string{"phone"});
  }

  uint64_t put_map(partition_map m) {
    auto r = ask<uint64_t>(caf::put_atom::value, std::move(m));
    REQUIRE(r.first);
    return *r.first;
  }
};

/// Every partition on node 1 but `p` (on node 2), at `epoch`.
partition_map map_without(uint32_t p, uint64_t epoch) {
  auto m = partition_map::single_node(partitions, single_node_id);
  m.owners[p] = single_node_id + 1;
  m.map_epoch = epoch;
  return m;
}

} // namespace

TEST_CASE("sim: an old account's login, auth, block and setting take one "
          "partition per step") {
  const std::string name = "olga";
  auto id = old_id_for(name);
  auto pn = name_partition(name);
  auto pu = user_partition(id);
  REQUIRE(pn != pu);
  fixture f{old_account(name, id)};
  // Login: name -> id in the name's partition (one read, no write), then
  // password, device and token in the id's.
  auto in = f.login(name, "correct horse");
  REQUIRE(in.first);
  CHECK(in.first->user == id);
  auto log = f.taken();
  CHECK(steps(log) == std::vector<uint32_t>{pn, pu});
  CHECK(written(log) == std::set<uint32_t>{pu});
  REQUIRE_FALSE(log.empty());
  CHECK(log.front().key == keys::account(name));
  CHECK(partition_of_key(log[1].key) == pu); // the name's entry, once
  // A wrong password is refused after the same two steps, writing nothing.
  CHECK(is(f.login(name, "wrong horse").second, errc::unauthenticated));
  log = f.taken();
  CHECK(steps(log) == std::vector<uint32_t>{pn, pu});
  CHECK(written(log).empty());
  // Token auth: the id's partition only.
  auto who = f.ask<principal>(auth_atom::value, in.first->token);
  REQUIRE(who.first);
  CHECK(who.first->user == id);
  CHECK(who.first->read_receipts);
  CHECK(steps(f.taken()) == std::vector<uint32_t>{pu});
  // The read-receipts setting: the id's partition only, and auth sees it.
  auto off = f.ask<bool>(caf::put_atom::value, id, false);
  REQUIRE(off.first);
  log = f.taken();
  CHECK(steps(log) == std::vector<uint32_t>{pu});
  CHECK(written(log) == std::set<uint32_t>{pu});
  who = f.ask<principal>(auth_atom::value, in.first->token);
  REQUIRE(who.first);
  CHECK_FALSE(who.first->read_receipts);
  CHECK(steps(f.taken()) == std::vector<uint32_t>{pu});
  // Block by name: name -> id, then the record in the id's partition.
  auto blocked = f.ask<bool>(block_atom::value, name, true);
  REQUIRE(blocked.first);
  log = f.taken();
  CHECK(steps(log) == std::vector<uint32_t>{pn, pu});
  CHECK(written(log) == std::set<uint32_t>{pu});
  // Blocked: login refused, auth refused, each in the same steps.
  CHECK(is(f.login(name, "correct horse").second, errc::forbidden));
  CHECK(steps(f.taken()) == std::vector<uint32_t>{pn, pu});
  CHECK(is(f.ask<principal>(auth_atom::value, in.first->token).second,
           errc::unauthenticated));
  CHECK(steps(f.taken()) == std::vector<uint32_t>{pu});
  // Resolving the name reads its partition only; the id, its own.
  auto resolved = f.ask<user_id>(caf::resolve_atom::value, name);
  CHECK(resolved.first == std::optional<user_id>{id});
  CHECK(steps(f.taken()) == std::vector<uint32_t>{pn});
}

TEST_CASE("sim: a new account's login and block are one step") {
  fixture f;
  auto id = f.ask<user_id>(register_atom::value, std::string{"nina"},
                           std::string{"correct horse"});
  REQUIRE(id.first);
  auto p = user_partition(*id.first);
  CHECK(steps(f.taken()) == std::vector<uint32_t>{p});
  REQUIRE(f.login("nina", "correct horse").first);
  CHECK(steps(f.taken()) == std::vector<uint32_t>{p});
  REQUIRE(f.ask<bool>(block_atom::value, std::string{"nina"}, true).first);
  CHECK(steps(f.taken()) == std::vector<uint32_t>{p});
}

TEST_CASE("sim: the accounts actor follows the partition map") {
  const std::string name = "olga";
  auto id = old_id_for(name);
  auto pn = name_partition(name);
  auto pu = user_partition(id);
  fixture f{old_account(name, id)};
  auto in = f.login(name, "correct horse");
  REQUIRE(in.first);
  // A new user of partition p caches p's last id.
  auto first = f.ask<user_id>(register_atom::value, std::string{"alice"},
                              std::string{"correct horse"});
  REQUIRE(first.first);
  auto p = name_partition("alice");
  REQUIRE(p != pu);
  std::string other; // another name of p
  for (int i = 0; other.empty(); ++i)
    if (name_partition("n" + std::to_string(i)) == p)
      other = "n" + std::to_string(i);
  // p moves to node 2: its steps are refused, retryably.
  CHECK(f.put_map(map_without(p, 2)) == 2);
  auto moved = f.ask<user_id>(register_atom::value, other,
                              std::string{"correct horse"});
  CHECK(is(moved.second, errc::unavailable));
  CHECK(is(f.ask<user_id>(caf::resolve_atom::value, std::string{"alice"})
             .second,
           errc::unavailable));
  // Meanwhile node 2 hands out ids of p: its counter, as the partition
  // comes back.
  auto ahead = *store::next_user_id(*first.first + 1000, p, partitions);
  pb::Counter c;
  c.set_value(ahead);
  write_batch b;
  b.put(store::user_counter_key(p, partitions), c.SerializeAsString());
  REQUIRE_FALSE(f.disk->write(b, true));
  // An old map is refused and changes nothing.
  CHECK(is(f.ask<uint64_t>(caf::put_atom::value, map_without(pu, 2)).second,
           errc::conflict));
  // p comes back: its counter is read afresh, no id is handed out twice.
  CHECK(f.put_map(partition_map{3, partition_map::single_node(
                                     partitions, single_node_id)
                                     .owners})
        == 3);
  auto next = f.ask<user_id>(register_atom::value, other,
                             std::string{"correct horse"});
  REQUIRE(next.first);
  CHECK(*next.first > ahead);
  // The old account's two partitions: login's second step is refused when
  // the id's partition is elsewhere, its first when the name's is.
  CHECK(f.put_map(map_without(pu, 4)) == 4);
  CHECK(is(f.login(name, "correct horse").second, errc::unavailable));
  CHECK(is(f.ask<principal>(auth_atom::value, in.first->token).second,
           errc::unavailable));
  CHECK(is(f.ask<bool>(caf::put_atom::value, id, false).second,
           errc::unavailable));
  CHECK(f.put_map(map_without(pn, 5)) == 5);
  CHECK(is(f.login(name, "correct horse").second, errc::unavailable));
  CHECK(is(f.ask<bool>(block_atom::value, name, true).second,
           errc::unavailable));
  REQUIRE(f.ask<principal>(auth_atom::value, in.first->token).first);
}
