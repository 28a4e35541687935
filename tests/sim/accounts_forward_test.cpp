// Account steps across two nodes (issue 21, item 7): two accounts actors,
// each over its own memory store, whose partition maps split the
// partitions between them. An old account whose name is placed on node 1
// and whose id on node 2 logs in, authenticates, is blocked and changes
// its setting through either node: each step runs on the node owning its
// partition (handed over by the accounts actor of the node asked), and
// each store is only ever read and written in its own node's partitions.
// Two maps that disagree (each node thinks the other owns the id's
// partition) answer unavailable instead of handing the step back and
// forth, and a peer that never answers is unavailable after the timeout.

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "actors/disconnect.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/accounts/credentials.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout_migration.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;

namespace {

namespace pb = parley::store::v1;

constexpr uint32_t partitions = 64;

/// A memory store that logs every key read or written.
struct logged_backend : memory_backend {
  std::vector<std::string> keys;

  caf::error write(const write_batch& batch, bool sync) override {
    for (auto& op : batch.ops)
      keys.push_back(op.key);
    return memory_backend::write(batch, sync);
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    keys.emplace_back(key);
    return memory_backend::get(key);
  }

  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    keys.emplace_back(from);
    return memory_backend::scan(from, to,
                                [&](std::string_view k, std::string_view v) {
                                  keys.emplace_back(k);
                                  return f(k, v);
                                });
  }

  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    keys.emplace_back(from);
    auto r = memory_backend::last(from, to);
    if (r && *r)
      keys.push_back((*r)->first);
    return r;
  }
};

uint32_t user_partition(user_id u) {
  return partition_of(placement_key::user(u), partitions);
}

uint32_t name_partition(const std::string& name) {
  return partition_of(placement_key::username(name), partitions);
}

/// Odd partitions on node 2, even ones on node 1.
partition_map split_map(uint64_t epoch) {
  partition_map m = partition_map::single_node(partitions, 1);
  for (uint32_t p = 1; p < partitions; p += 2)
    m.owners[p] = 2;
  m.map_epoch = epoch;
  return m;
}

/// A name placed on node 1 and an id placed on node 2 (split_map).
std::pair<std::string, user_id> old_placement() {
  std::string name;
  for (int i = 0; name.empty(); ++i)
    if (name_partition("olga" + std::to_string(i)) % 2 == 0)
      name = "olga" + std::to_string(i);
  user_id id = 1;
  while (user_partition(id) % 2 == 0)
    ++id;
  return {name, id};
}

/// A layout-2 account: the whole record under the name, the name under id.
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

struct node {
  std::shared_ptr<logged_backend> disk = std::make_shared<logged_backend>();
  store_writer_actor writer;
  accounts_actor accounts;
};

struct fixture : sim::coordinated_system {
  node nodes[2];

  /// Both stores hold the old account (migrated to layout 3 at start);
  /// each node is told `map_of(its id)` and the other's accounts actor.
  template <class MapOf>
  fixture(const write_batch& before, MapOf map_of) {
    REQUIRE(credentials::init());
    for (node_id self = 1; self <= 2; ++self) {
      auto& n = nodes[self - 1];
      REQUIRE_FALSE(n.disk->write(before, true));
      REQUIRE(store::settle_layout(*n.disk));
      REQUIRE_FALSE(store::settle_user_counters(*n.disk, partitions));
      n.writer = sys->spawn(store_writer_impl,
                            std::shared_ptr<kv_backend>(n.disk),
                            store_writer_limits{});
      accounts_limits lim;
      lim.partitions = partitions;
      lim.self = self;
      lim.hash_strength = "min";
      n.accounts = sys->spawn(accounts_impl,
                              std::shared_ptr<kv_backend>(n.disk), n.writer,
                              lim, [] { return int64_t{1000}; });
    }
    for (node_id self = 1; self <= 2; ++self) {
      REQUIRE(ask<uint64_t>(self, caf::put_atom::value, map_of(self)).first);
      auto peer = caf::actor_cast<caf::actor>(at(3 - self));
      REQUIRE(ask<uint64_t>(self, caf::put_atom::value, node_id{3 - self},
                            peer)
                .first
              == 1u);
    }
    for (auto& n : nodes)
      n.disk->keys.clear();
  }

  ~fixture() {
    for (auto& n : nodes) {
      caf::anon_send_exit(n.accounts, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(n.writer, caf::exit_reason::user_shutdown);
    }
    sched->run();
  }

  accounts_actor& at(node_id n) {
    return nodes[n - 1].accounts;
  }

  /// Asks node `n`'s accounts actor from a fresh actor; runs at most
  /// `max_steps` jobs (a request bounced between nodes would not end).
  template <class T, class... Ts>
  std::pair<std::optional<T>, caf::error> ask(node_id n, Ts... args) {
    auto out = std::make_shared<std::pair<std::optional<T>, caf::error>>();
    auto answered = std::make_shared<bool>(false);
    auto acc = at(n);
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(acc, timeouts::scan, args...)
        .then(
          [=](T& x) {
            out->first = x;
            *answered = true;
          },
          [=](caf::error& e) {
            out->second = e;
            *answered = true;
          });
    });
    sched->run(10000);
    CHECK(*answered);
    return *out;
  }

  std::pair<std::optional<login_result>, caf::error>
  login(node_id n, const std::string& name) {
    return ask<login_result>(n, login_atom::value, name,
                             std::string{"correct horse"},
                             std::string{"phone"});
  }

  /// Keys node `n`'s store read or wrote in partitions it does not own
  /// under split_map (and forgets the log).
  std::vector<std::string> strays(node_id n) {
    std::vector<std::string> out;
    auto owners = split_map(1);
    for (auto& k : nodes[n - 1].disk->keys) {
      auto slot = keys::slot_of_key(k);
      REQUIRE(slot);
      if (owners.owner(partition_of_slot(*slot, partitions)) != n)
        out.push_back(k);
    }
    nodes[n - 1].disk->keys.clear();
    return out;
  }
};

} // namespace

TEST_CASE("sim: an old account split across two nodes logs in, "
          "authenticates, is blocked and sets its setting through either") {
  auto [name, id] = old_placement();
  fixture f{old_account(name, id), [](node_id) { return split_map(2); }};
  // Login through node 1 (the name's) and through node 2 (the id's).
  auto in1 = f.login(1, name);
  REQUIRE(in1.first);
  CHECK(in1.first->user == id);
  auto in2 = f.login(2, name);
  REQUIRE(in2.first);
  CHECK(in2.first->user == id);
  CHECK(in2.first->device != in1.first->device);
  // A wrong password is refused through either.
  for (node_id n : {1, 2})
    CHECK(is(f.ask<login_result>(n, login_atom::value, name,
                                 std::string{"wrong horse"},
                                 std::string{"phone"})
               .second,
             errc::unauthenticated));
  // Either token authenticates through either node.
  for (auto& token : {in1.first->token, in2.first->token})
    for (node_id n : {1, 2}) {
      auto who = f.ask<principal>(n, auth_atom::value, token);
      REQUIRE(who.first);
      CHECK(who.first->user == id);
      CHECK(who.first->read_receipts);
    }
  // The setting through node 1 (not the id's owner); auth sees it.
  auto off = f.ask<bool>(1, caf::put_atom::value, id, false);
  CHECK(off.first == std::optional<bool>{false});
  for (node_id n : {1, 2}) {
    auto who = f.ask<principal>(n, auth_atom::value, in1.first->token);
    REQUIRE(who.first);
    CHECK_FALSE(who.first->read_receipts);
  }
  // The name resolves through either; the devices list through either.
  for (node_id n : {1, 2}) {
    CHECK(f.ask<user_id>(n, caf::resolve_atom::value, name).first
          == std::optional<user_id>{id});
    auto devs = f.ask<std::vector<device_info>>(n, devices_atom::value, id);
    REQUIRE(devs.first);
    CHECK(devs.first->size() == 2);
  }
  // Blocked through node 2 (not the name's owner): refused after.
  REQUIRE(f.ask<bool>(2, block_atom::value, name, true).first);
  for (node_id n : {1, 2}) {
    CHECK(is(f.login(n, name).second, errc::forbidden));
    CHECK(is(f.ask<principal>(n, auth_atom::value, in1.first->token).second,
             errc::unauthenticated));
  }
  // Unblocked and blocked again through node 1.
  REQUIRE(f.ask<bool>(1, block_atom::value, name, false).first);
  REQUIRE(f.login(1, name).first);
  REQUIRE(f.ask<bool>(1, block_atom::value, name, true).first);
  for (node_id n : {1, 2})
    CHECK(is(f.login(n, name).second, errc::forbidden));
  // Each store was read and written in its own node's partitions only.
  CHECK(f.strays(1) == std::vector<std::string>{});
  CHECK(f.strays(2) == std::vector<std::string>{});
}

TEST_CASE("sim: a new account registered through the other node") {
  fixture f{write_batch{}, [](node_id) { return split_map(2); }};
  std::string on1;
  for (int i = 0; on1.empty(); ++i)
    if (name_partition("nina" + std::to_string(i)) % 2 == 0)
      on1 = "nina" + std::to_string(i);
  auto id = f.ask<user_id>(2, register_atom::value, on1,
                           std::string{"correct horse"});
  REQUIRE(id.first);
  CHECK(user_partition(*id.first) % 2 == 0);
  REQUIRE(f.login(2, on1).first);
  CHECK(f.strays(1) == std::vector<std::string>{});
  CHECK(f.strays(2) == std::vector<std::string>{});
}

TEST_CASE("sim: accounts of two nodes whose maps disagree answer unavailable, "
          "not back and forth") {
  auto [name, id] = old_placement();
  auto pu = user_partition(id);
  // Each node thinks the other owns the id's partition.
  fixture f{old_account(name, id), [pu](node_id self) {
              auto m = split_map(2);
              m.owners[pu] = 3 - self;
              return m;
            }};
  for (node_id n : {1, 2}) {
    CHECK(is(f.login(n, name).second, errc::unavailable));
    CHECK(is(f.ask<bool>(n, caf::put_atom::value, id, false).second,
             errc::unavailable));
    CHECK(is(f.ask<bool>(n, block_atom::value, name, true).second,
             errc::unavailable));
  }
}

TEST_CASE("sim: an accounts peer that never answers is unavailable after the "
          "timeout") {
  auto [name, id] = old_placement();
  fixture f{old_account(name, id), [](node_id) { return split_map(2); }};
  // Node 1's peer for node 2 swallows every request.
  auto mute = f.sys->spawn([](caf::event_based_actor* self) {
    return caf::behavior{
      [self](const account_login_step&) {
        return self->make_response_promise<login_result>();
      },
    };
  });
  REQUIRE(f.ask<uint64_t>(1, caf::put_atom::value, node_id{2}, mute).first
          == 1u);
  auto out = std::make_shared<caf::error>();
  auto acc = f.at(1);
  f.sys->spawn([=](caf::event_based_actor* self) {
    self->request(acc, timeouts::scan, login_atom::value, name,
                  std::string{"correct horse"}, std::string{"phone"})
      .then([](login_result&) {}, [=](caf::error& e) { *out = e; });
  });
  f.sched->run();
  CHECK_FALSE(*out); // waiting for node 2
  f.sched->advance_time(timeouts::commit);
  f.sched->run();
  CHECK(is(*out, errc::unavailable));
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
}

TEST_CASE("sim: a connection authenticated through the other node is closed "
          "when its account is blocked or its device revoked at the owner") {
  auto [name, id] = old_placement();
  fixture f{old_account(name, id), [](node_id) { return split_map(2); }};
  auto in1 = f.login(1, name);
  auto in2 = f.login(1, name);
  REQUIRE(in1.first);
  REQUIRE(in2.first);
  // Two connections on node 1, authenticated there (their records are on
  // node 2): each keeps the close codes it is sent.
  auto connect = [&](const std::string& token) {
    auto codes = std::make_shared<std::vector<uint32_t>>();
    auto authed = std::make_shared<bool>(false);
    auto acc = f.at(1);
    auto conn = f.sys->spawn([=](caf::event_based_actor* self) {
      self->request(acc, timeouts::scan, auth_atom::value, token)
        .then([=](principal&) { *authed = true; }, [](caf::error&) {});
      return caf::behavior{
        [=](caf::close_atom, uint32_t code, const std::string&) {
          codes->push_back(code);
        },
      };
    });
    f.sched->run();
    CHECK(*authed);
    return std::make_pair(conn, codes);
  };
  auto [c1, codes1] = connect(in1.first->token);
  auto [c2, codes2] = connect(in2.first->token);
  // The first device revoked through node 2: only its connection closes.
  REQUIRE(f.ask<bool>(2, revoke_atom::value, id, in1.first->device).first);
  CHECK(*codes1
        == std::vector<uint32_t>{code_of(disconnect_cause::device_revoked)});
  CHECK(codes2->empty());
  // Blocked through node 2: the other closes too.
  REQUIRE(f.ask<bool>(2, block_atom::value, name, true).first);
  CHECK(*codes2
        == std::vector<uint32_t>{code_of(disconnect_cause::account_blocked)});
  caf::anon_send_exit(c1, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(c2, caf::exit_reason::user_shutdown);
}

TEST_CASE("sim: names and ids placed on both nodes resolve together through "
          "either (a group's members)") {
  fixture f{write_batch{}, [](node_id) { return split_map(2); }};
  // Four accounts, two with their partition on each node.
  std::vector<std::string> names;
  std::vector<uint64_t> ids;
  for (int i = 0; names.size() < 4; ++i) {
    auto name = "gina" + std::to_string(i);
    auto on = name_partition(name) % 2 == 0 ? 1 : 2;
    if (std::count_if(names.begin(), names.end(), [&](auto& n) {
          return (name_partition(n) % 2 == 0 ? 1 : 2) == on;
        }) == 2)
      continue;
    auto id = f.ask<user_id>(1, register_atom::value, name,
                             std::string{"correct horse"});
    REQUIRE(id.first);
    names.push_back(name);
    ids.push_back(*id.first);
  }
  f.strays(1);
  f.strays(2);
  for (node_id n : {1, 2}) {
    CAPTURE(n);
    // Names first, in order, then the ids checked.
    auto got = f.ask<std::vector<uint64_t>>(
      n, caf::resolve_atom::value, names,
      std::vector<uint64_t>{ids[3], ids[0]});
    REQUIRE(got.first);
    CHECK(*got.first
          == std::vector<uint64_t>{ids[0], ids[1], ids[2], ids[3], ids[3],
                                   ids[0]});
    // An unknown name or id on either node: not_found, naming it.
    auto bad = f.ask<std::vector<uint64_t>>(
      n, caf::resolve_atom::value,
      std::vector<std::string>{names[0], "nobody-here"},
      std::vector<uint64_t>{});
    CHECK(is(bad.second, errc::not_found));
    CHECK(to_string(bad.second).find("nobody-here") != std::string::npos);
    auto bad_id = f.ask<std::vector<uint64_t>>(
      n, caf::resolve_atom::value, std::vector<std::string>{},
      std::vector<uint64_t>{ids[1], 999'999});
    CHECK(is(bad_id.second, errc::not_found));
    // Nothing to resolve: nothing.
    auto none = f.ask<std::vector<uint64_t>>(
      n, caf::resolve_atom::value, std::vector<std::string>{},
      std::vector<uint64_t>{});
    CHECK(none.first == std::optional<std::vector<uint64_t>>{
                          std::vector<uint64_t>{}});
  }
  // Each store read only in its own node's partitions.
  CHECK(f.strays(1) == std::vector<std::string>{});
  CHECK(f.strays(2) == std::vector<std::string>{});
}
