#pragma once

// The accounts actor and its store writer over a memory store, under CAF's
// test coordinator (accounts_test.cpp, accounts_partition_test.cpp). The
// backend type is a parameter so that a test can record what is written.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <utility>

#include <caf/event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/layout_migration.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

namespace parley::sim {

template <class Backend = memory_backend>
struct accounts_fixture : coordinated_system {
  std::shared_ptr<Backend> disk = std::make_shared<Backend>();
  store_writer_actor writer;
  accounts_actor accounts;

  accounts_fixture() {
    REQUIRE(credentials::init());
  }

  /// Settles the key layout and the user id counters as a node's start
  /// does (a store written as an older layout is migrated, the old global
  /// counter becomes every partition's floor), then spawns the writer and
  /// the accounts actor (a minimum-cost Argon2id).
  void start(accounts_limits lim) {
    REQUIRE(store::settle_layout(*disk));
    REQUIRE_FALSE(store::settle_user_counters(*disk, lim.partitions));
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    lim.hash_strength = "min";
    accounts = sys->spawn(accounts_impl, std::shared_ptr<kv_backend>(disk),
                          writer, lim, [] { return int64_t{1000}; });
  }

  ~accounts_fixture() {
    caf::anon_send_exit(accounts, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Sends `args` to the accounts actor from a fresh actor; runs to
  /// quiescence; returns the value or the error.
  template <class T, class... Ts>
  std::pair<std::optional<T>, caf::error> ask(Ts... args) {
    auto out = std::make_shared<std::pair<std::optional<T>, caf::error>>();
    auto acc = accounts;
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(acc, caf::infinite, args...)
        .then([=](T& x) { out->first = x; },
              [=](caf::error& e) { out->second = e; });
    });
    sched->run();
    return *out;
  }
};

} // namespace parley::sim
