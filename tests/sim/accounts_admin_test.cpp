// The accounts actor's operator steps across two nodes (issue 23: `user
// show`, `user limit`): two accounts actors over their own memory stores,
// odd partitions on node 2 and even ones on node 1. Asked of either node,
// each step runs at the owner of the user's partition; a send limit
// changed through the node that does not own the user reaches a
// connection authenticated through either node at once, comes with the
// principal of a later authentication, and `off` returns to the default;
// each store is read and written in its own node's partitions only.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;

namespace {

constexpr uint32_t partitions = 64;

/// A memory store that logs every key written or read by get/scan.
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
    return memory_backend::scan(from, to, f);
  }
};

/// Odd partitions on node 2, even ones on node 1.
partition_map split_map() {
  partition_map m = partition_map::single_node(partitions, 1);
  for (uint32_t p = 1; p < partitions; p += 2)
    m.owners[p] = 2;
  m.map_epoch = 2;
  return m;
}

node_id owner_of(user_id u) {
  return partition_of(placement_key::user(u), partitions) % 2 == 0 ? 1 : 2;
}

struct fixture : sim::coordinated_system {
  std::shared_ptr<logged_backend> disks[2];
  store_writer_actor writers[2];
  accounts_actor accounts[2];

  fixture() {
    REQUIRE(credentials::init());
    for (node_id self = 1; self <= 2; ++self) {
      auto& disk = disks[self - 1];
      disk = std::make_shared<logged_backend>();
      writers[self - 1] = sys->spawn(store_writer_impl,
                                     std::shared_ptr<kv_backend>(disk),
                                     store_writer_limits{});
      accounts_limits lim;
      lim.partitions = partitions;
      lim.self = self;
      lim.hash_strength = "min";
      lim.map = split_map();
      accounts[self - 1] = sys->spawn(accounts_impl,
                                      std::shared_ptr<kv_backend>(disk),
                                      writers[self - 1], lim,
                                      [] { return int64_t{1000}; });
    }
    for (node_id self = 1; self <= 2; ++self)
      REQUIRE(ask<uint64_t>(self, caf::put_atom::value, node_id{3 - self},
                            caf::actor_cast<caf::actor>(at(3 - self)))
                .first
              == 1u);
  }

  ~fixture() {
    for (int i = 0; i < 2; ++i) {
      caf::anon_send_exit(accounts[i], caf::exit_reason::user_shutdown);
      caf::anon_send_exit(writers[i], caf::exit_reason::user_shutdown);
    }
    sched->run();
  }

  accounts_actor& at(node_id n) {
    return accounts[n - 1];
  }

  template <class T, class... Ts>
  std::pair<std::optional<T>, caf::error> ask(node_id n, Ts... args) {
    auto out = std::make_shared<std::pair<std::optional<T>, caf::error>>();
    auto acc = at(n);
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(acc, timeouts::scan, args...)
        .then([=](T& x) { out->first = x; },
              [=](caf::error& e) { out->second = e; });
    });
    sched->run(10000);
    CHECK((out->first || out->second));
    return *out;
  }

  /// Keys node `n`'s store touched in partitions it does not own.
  std::vector<std::string> strays(node_id n) {
    std::vector<std::string> out;
    auto owners = split_map();
    for (auto& k : disks[n - 1]->keys) {
      auto slot = keys::slot_of_key(k);
      if (slot && owners.owner(partition_of_slot(*slot, partitions)) != n)
        out.push_back(k);
    }
    return out;
  }
};

/// A connection authenticated with `token` through node `n`: it keeps
/// the send limits it is told, and the principal it got.
struct connection {
  caf::actor hdl;
  std::shared_ptr<std::vector<send_limit>> told;
  std::shared_ptr<std::optional<principal>> who;
};

connection connect(fixture& f, node_id n, const std::string& token) {
  connection c{{}, std::make_shared<std::vector<send_limit>>(),
               std::make_shared<std::optional<principal>>()};
  auto acc = f.at(n);
  auto told = c.told;
  auto who = c.who;
  c.hdl = f.sys->spawn([=](caf::event_based_actor* self) {
    self->request(acc, timeouts::scan, auth_atom::value, token)
      .then([=](principal& p) { *who = p; }, [](caf::error&) {});
    return caf::behavior{
      [=](caf::update_atom, send_limit l) { told->push_back(l); },
    };
  });
  f.sched->run();
  REQUIRE(*c.who);
  return c;
}

} // namespace

TEST_CASE("sim: user show and user limit run at the user's owner, asked of "
          "either node, and the limit reaches the user's connections") {
  fixture f;
  auto id = f.ask<user_id>(1, register_atom::value, std::string{"rosa"},
                           std::string{"correct horse"});
  REQUIRE(id.first);
  auto user = *id.first;
  auto owner = owner_of(user);
  auto other = node_id{3 - owner};
  auto in = f.ask<login_result>(other, login_atom::value, std::string{"rosa"},
                                std::string{"correct horse"},
                                std::string{"phone"});
  REQUIRE(in.first);
  // No limit yet: the principal says default.
  auto at_other = connect(f, other, in.first->token);
  auto at_owner = connect(f, owner, in.first->token);
  CHECK((*at_other.who)->send.is_default());
  // The view, from either node.
  for (node_id n : {1, 2}) {
    auto v = f.ask<account_view>(n, account_show_step{user});
    REQUIRE(v.first);
    CHECK(v.first->name == "rosa");
    CHECK_FALSE(v.first->blocked);
    CHECK(v.first->send.is_default());
    REQUIRE(v.first->devices.size() == 1);
    CHECK(v.first->devices[0].name == "phone");
  }
  // 2/s through the node that does not own rosa: both connections told.
  auto set = f.ask<account_view>(other,
                                 account_limit_step{user, {2, 1000}});
  REQUIRE(set.first);
  CHECK(set.first->send.count == 2);
  CHECK(set.first->send.period_ms == 1000);
  for (auto* c : {&at_other, &at_owner}) {
    REQUIRE_FALSE(c->told->empty());
    CHECK(c->told->back().count == 2);
    CHECK(c->told->back().period_ms == 1000);
  }
  // Shown by both, and given with a later principal through either.
  for (node_id n : {1, 2}) {
    CHECK(f.ask<account_view>(n, account_show_step{user}).first->send.count
          == 2);
    auto who = f.ask<principal>(n, auth_atom::value, in.first->token);
    REQUIRE(who.first);
    CHECK(who.first->send.count == 2);
  }
  // off through the owner: the default again, the connections told.
  auto off = f.ask<account_view>(owner, account_limit_step{user, {}});
  REQUIRE(off.first);
  CHECK(off.first->send.is_default());
  CHECK(at_other.told->back().is_default());
  CHECK(at_owner.told->back().is_default());
  CHECK(f.ask<principal>(other, auth_atom::value, in.first->token)
          .first->send.is_default());
  // An unknown id: not_found from either node, nothing written.
  for (node_id n : {1, 2}) {
    CHECK(is(f.ask<account_view>(n, account_show_step{user + 1}).second,
             errc::not_found));
    CHECK(is(f.ask<account_view>(n, account_limit_step{user + 1, {5, 1000}})
               .second,
             errc::not_found));
  }
  CHECK(f.strays(1) == std::vector<std::string>{});
  CHECK(f.strays(2) == std::vector<std::string>{});
  caf::anon_send_exit(at_other.hdl, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(at_owner.hdl, caf::exit_reason::user_shutdown);
}
