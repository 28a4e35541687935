// The accounts actor over partitions (issue 21, item 7): every batch it
// writes (registration, login, revocation, settings, blocking) keys one
// partition; a new user's id is in its username's partition; a token
// names its user, and an edited prefix is refused; a data directory from
// before (the global id counter, tokens without a prefix) keeps working.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/accounts/credentials.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "accounts_fixture.hpp"

using namespace parley;

namespace {

namespace pb = parley::store::v1;

constexpr uint32_t partitions = 64;

/// A memory store that keeps a copy of every batch written to it.
struct recording_backend : memory_backend {
  std::vector<write_batch> batches;

  caf::error write(const write_batch& batch, bool sync) override {
    batches.push_back(batch);
    return memory_backend::write(batch, sync);
  }
};

/// The partitions the keys of `batch` belong to (by their slot prefix).
std::set<uint32_t> partitions_of(const write_batch& batch) {
  std::set<uint32_t> out;
  for (auto& op : batch.ops) {
    auto slot = keys::slot_of_key(op.key);
    REQUIRE(slot);
    out.insert(partition_of_slot(*slot, partitions));
  }
  return out;
}

uint32_t user_partition(user_id user) {
  return partition_of(placement_key::user(user), partitions);
}

uint32_t name_partition(const std::string& name) {
  return partition_of(placement_key::username(name), partitions);
}

struct fixture : sim::accounts_fixture<recording_backend> {
  /// `before` writes what an older data directory holds, first.
  explicit fixture(const write_batch& before = {}) {
    if (!before.ops.empty())
      REQUIRE_FALSE(disk->write(before, true));
    accounts_limits lim;
    lim.partitions = partitions;
    start(lim); // migrates `before` to the current layout first
    disk->batches.clear();
  }

  /// The batches written since the last call.
  std::vector<write_batch> written() {
    auto out = std::move(disk->batches);
    disk->batches.clear();
    return out;
  }

  user_id enrol(const std::string& name) {
    auto id = ask<user_id>(register_atom::value, name,
                           std::string{"correct horse"});
    REQUIRE(id.first);
    return *id.first;
  }

  login_result login(const std::string& name, const std::string& dev) {
    auto r = ask<login_result>(login_atom::value, name,
                               std::string{"correct horse"}, dev);
    REQUIRE(r.first);
    return *r.first;
  }
};

/// What a store from before held for `name` (user `id`, device 1 with the
/// bare `token`): the global counter at `counter`, the token record by hash.
write_batch old_store(const std::string& name, user_id id,
                      const std::string& token, user_id counter) {
  write_batch b;
  store::account acct;
  acct.name = name;
  acct.user = id;
  acct.password_hash = credentials::hash_password("correct horse", "min");
  pb::AccountRecord rec;
  rec.set_user_id(id);
  rec.set_password_hash(acct.password_hash);
  b.put(keys::account(name), rec.SerializeAsString());
  b.put(keys::user_name(id), name);
  pb::Counter c;
  c.set_value(counter);
  b.put(keys::counter("user"), c.SerializeAsString());
  store::device_record dev;
  dev.device = 1;
  dev.name = "old phone";
  dev.token_hash = credentials::token_hash(token);
  pb::DeviceRecord drec;
  drec.set_name(dev.name);
  drec.set_token_hash(dev.token_hash);
  b.put(keys::device(id, 1), drec.SerializeAsString());
  pb::TokenRecord trec;
  trec.set_user_id(id);
  trec.set_device_id(1);
  b.put(keys::token(dev.token_hash), trec.SerializeAsString());
  return b;
}

} // namespace

TEST_CASE("sim: every account write is one batch of one partition") {
  fixture f;
  std::set<user_id> ids;
  for (auto name : {"alice", "bob", "carol", "dave", "erin", "frank"}) {
    auto id = f.enrol(name);
    CAPTURE(name);
    CHECK(ids.insert(id).second);
    CHECK(user_partition(id) == name_partition(name));
    auto ws = f.written();
    REQUIRE(ws.size() == 1);
    CHECK(partitions_of(ws[0]) == std::set<uint32_t>{name_partition(name)});
    // Login: the device and its token, in the user's partition.
    auto dev = f.login(name, "phone");
    ws = f.written();
    REQUIRE(ws.size() == 1);
    CHECK(ws[0].ops.size() == 2);
    CHECK(partitions_of(ws[0]) == std::set<uint32_t>{user_partition(id)});
    // The settings and blocking write the account record only.
    REQUIRE(f.ask<bool>(caf::put_atom::value, id, false).first);
    REQUIRE(f.ask<bool>(block_atom::value, std::string{name}, true).first);
    REQUIRE(f.ask<bool>(block_atom::value, std::string{name}, false).first);
    REQUIRE(f.ask<bool>(revoke_atom::value, id, dev.device).first);
    for (auto& w : f.written())
      CHECK(partitions_of(w).size() == 1);
  }
}

TEST_CASE("sim: a token names its user, and an edited prefix is refused") {
  fixture f;
  auto alice = f.enrol("alice");
  auto bob = f.enrol("bob");
  auto phone = f.login("alice", "phone");
  auto prefix = std::to_string(alice) + ".";
  REQUIRE(phone.token.compare(0, prefix.size(), prefix) == 0);
  CHECK(credentials::token_user(phone.token) == alice);
  auto who = f.ask<principal>(auth_atom::value, phone.token);
  REQUIRE(who.first);
  CHECK(who.first->user == alice);
  CHECK(who.first->device == phone.device);
  // Stored under the user, hashed: neither the token nor its secret.
  CHECK(*f.disk->get(keys::token(alice, credentials::token_hash(
          phone.token))));
  auto secret = phone.token.substr(prefix.size());
  CHECK_FALSE(*f.disk->get(keys::token(credentials::token_hash(secret))));
  // Bob's id in front of Alice's secret, the bare secret, a malformed
  // prefix: all refused.
  for (auto forged : {std::to_string(bob) + "." + secret, secret,
                      "0" + phone.token, "x" + phone.token})
    CHECK(is(f.ask<principal>(auth_atom::value, forged).second,
             errc::unauthenticated));
  // Revoked: refused.
  REQUIRE(f.ask<bool>(revoke_atom::value, alice, phone.device).first);
  CHECK(is(f.ask<principal>(auth_atom::value, phone.token).second,
           errc::unauthenticated));
}

TEST_CASE("sim: a data directory from before: old counter and old tokens") {
  // User 700 ("olga") registered when one counter handed out ids 1-1000,
  // with a token of the old form.
  credentials::init();
  auto old_token = credentials::new_token(1).substr(2); // the bare secret
  fixture f{old_store("olga", 700, old_token, 1000)};
  // The old token authenticates (found by its hash alone).
  auto who = f.ask<principal>(auth_atom::value, old_token);
  REQUIRE(who.first);
  CHECK(who.first->user == 700);
  CHECK(who.first->device == 1);
  // She logs in again: the new token names her; her old one still works.
  auto laptop = f.login("olga", "laptop");
  CHECK(laptop.user == 700);
  CHECK(laptop.device == 2);
  CHECK(credentials::token_user(laptop.token) == uint64_t{700});
  REQUIRE(f.ask<principal>(auth_atom::value, laptop.token).first);
  REQUIRE(f.ask<principal>(auth_atom::value, old_token).first);
  f.written();
  // New users get ids above the old counter, in their names' partitions.
  std::set<user_id> ids{700};
  for (auto name : {"alice", "bob", "carol", "dave"}) {
    auto id = f.enrol(name);
    CHECK(id > 1000);
    CHECK(user_partition(id) == name_partition(name));
    CHECK(ids.insert(id).second);
  }
  CHECK(is(f.ask<user_id>(register_atom::value, std::string{"olga"},
                          std::string{"correct horse"})
             .second,
           errc::conflict));
  f.written();
  // Revoking the old device refuses its token and then erases its record
  // (a second single-partition batch).
  REQUIRE(f.ask<bool>(revoke_atom::value, user_id{700}, device_id{1}).first);
  CHECK(is(f.ask<principal>(auth_atom::value, old_token).second,
           errc::unauthenticated));
  auto ws = f.written();
  REQUIRE(ws.size() == 2);
  for (auto& w : ws)
    CHECK(partitions_of(w).size() == 1);
  CHECK_FALSE(*f.disk->get(keys::token(credentials::token_hash(old_token))));
  REQUIRE(f.ask<principal>(auth_atom::value, laptop.token).first);
}
