// A node's lease and self-fencing (lease_keeper) against the in-memory
// control plane with a manual clock: renewal schedule, fencing before
// TTL - margin while etcd is unreachable, resuming, re-granting after the
// lease is gone, and a randomized schedule of faults (seeded; the seed is
// printed on failure). No sleeps, no wall clock.

#include <doctest/doctest.h>

#include "runtime/cluster/lease_keeper.hpp"
#include "runtime/cluster/memory_control_plane.hpp"

#include <random>
#include <vector>

using namespace parley::cluster;
using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;

namespace {

const auto t0 = time_point{} + 1h;

lease_keeper_options opts_6s() {
  lease_keeper_options o;
  o.key = "/parley/nodes/a";
  o.value = "127.0.0.1:4000";
  o.ttl = 6s;
  o.margin = 1000ms;
  o.retry_interval = 250ms;
  return o;
}

/// The registration as etcd holds it: its lease, 0 if the key is absent.
int64_t registered_lease(memory_control_plane& cp, const std::string& key) {
  auto r = cp.range(key);
  REQUIRE(r.ok());
  return r->kvs.empty() ? 0 : r->kvs[0].lease;
}

} // namespace

TEST_CASE("lease_keeper_registers_then_renews_every_third_of_the_ttl") {
  time_point t = t0;
  memory_control_plane cp([&] { return t; });
  std::vector<bool> changes;
  lease_keeper k(cp, opts_6s(), [&](bool w) { changes.push_back(w); });
  CHECK(!k.may_write(t));
  auto next = k.tick(t);
  REQUIRE(k.lease() != 0);
  CHECK(registered_lease(cp, "/parley/nodes/a") == k.lease());
  CHECK(k.may_write(t));
  CHECK(changes == std::vector<bool>{true});
  CHECK(next == t0 + 2s);
  const auto lease = k.lease();
  for (int i = 1; i <= 30; ++i) {
    t = next;
    next = k.tick(t);
    CHECK(t == t0 + 2s * i); // every T/3, on the dot
    CHECK(cp.lease_renewed_at(lease) == t);
    CHECK(k.last_renewed() == t);
    CHECK(next == t + 2s);
    CHECK(k.may_write(t + 4999ms));
    CHECK(!k.may_write(t + 5s)); // T - margin after the renewal
  }
  CHECK(k.lease() == lease);
  CHECK(changes == std::vector<bool>{true});
  // An early tick sends nothing.
  t = next - 1s;
  k.tick(t);
  CHECK(cp.lease_renewed_at(lease) == next - 2s);
}

TEST_CASE("lease_keeper_fences_at_ttl_minus_margin_when_unreachable_then_resumes") {
  time_point t = t0;
  memory_control_plane cp([&] { return t; });
  std::vector<bool> changes;
  lease_keeper k(cp, opts_6s(), [&](bool w) { changes.push_back(w); });
  auto next = k.tick(t);
  const auto lease = k.lease();
  cp.set_unreachable(true, cp_errc::timeout);
  int ticks = 0;
  while (next < t0 + 5s) {
    t = next;
    next = k.tick(t);
    ++ticks;
    CHECK(k.may_write(t));
  }
  CHECK(ticks > 1); // retried after the failed renewal at +2 s
  // It asked to be woken at the fence deadline, and fences there.
  CHECK(next == t0 + 5s);
  CHECK(k.may_write(t0 + 5s - 1ns));
  t = next;
  next = k.tick(t);
  CHECK(!k.may_write(t));
  CHECK(changes == std::vector<bool>{true, false});
  // etcd still holds the lease: the node stopped before it could lapse.
  cp.set_unreachable(false);
  CHECK(cp.lease_renewed_at(lease).has_value());
  CHECK(registered_lease(cp, "/parley/nodes/a") == lease);
  // Reachable again before the TTL: the renewal succeeds and writes resume.
  t = t0 + 5500ms;
  next = k.tick(t);
  CHECK(k.may_write(t));
  CHECK(k.lease() == lease);
  CHECK(k.last_renewed() == t);
  CHECK(changes == std::vector<bool>{true, false, true});
}

TEST_CASE("lease_keeper_grants_and_registers_again_after_lease_gone") {
  time_point t = t0;
  memory_control_plane cp([&] { return t; });
  std::vector<bool> changes;
  lease_keeper k(cp, opts_6s(), [&](bool w) { changes.push_back(w); });
  k.tick(t);
  const auto first = k.lease();
  SUBCASE("expired while unreachable") {
    cp.set_unreachable(true);
    for (t = t0 + 2s; t < t0 + 8s; t += 250ms)
      k.tick(t);
    CHECK(!k.may_write(t));
    cp.set_unreachable(false);
    CHECK(registered_lease(cp, "/parley/nodes/a") == 0); // the lease lapsed
    CHECK(changes == std::vector<bool>{true, false});
  }
  SUBCASE("revoked by someone else") {
    REQUIRE(cp.revoke(first).ok());
    t = t0 + 2s;
  }
  k.tick(t);
  CHECK(k.lease() != first);
  CHECK(k.lease() != 0);
  CHECK(k.may_write(t));
  CHECK(k.last_renewed() == t);
  CHECK(registered_lease(cp, "/parley/nodes/a") == k.lease());
  // The loss is reported even when the new lease comes in the same tick.
  CHECK(changes == std::vector<bool>{true, false, true});
}

TEST_CASE("lease_keeper_counts_the_fence_deadline_from_when_the_request_was_sent") {
  // etcd processes each request 700 ms after the node sent it.
  time_point t = t0;
  memory_control_plane cp([&] { return t + 700ms; });
  lease_keeper k(cp, opts_6s());
  k.tick(t);
  CHECK(k.last_renewed() == t0);
  CHECK(k.fence_deadline() == t0 + 5s);
  t = t0 + 2s;
  k.tick(t);
  CHECK(k.last_renewed() == t0 + 2s);
  CHECK(cp.lease_renewed_at(k.lease()) == t0 + 2700ms);
  CHECK(!k.may_write(t0 + 7s));
}

TEST_CASE("lease_keeper_never_allows_writes_past_its_deadline_under_random_faults") {
  int fences = 0, regrants = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    auto pick = [&](int64_t lo, int64_t hi) {
      return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    time_point t = t0;
    const auto lag = std::chrono::milliseconds(pick(0, 600)); // send->etcd
    memory_control_plane cp([&] { return t + lag; });
    lease_keeper k(cp, opts_6s(), [&](bool w) { fences += w ? 0 : 1; });
    auto next = k.tick(t);
    int64_t lease = k.lease();
    for (int step = 0; step < 300; ++step) {
      if (pick(0, 99) < 12)
        cp.set_unreachable(!pick(0, 2) ? false : true,
                           pick(0, 1) ? cp_errc::timeout
                                      : cp_errc::unreachable);
      // Tick on time, early, or late (a slow caller), never backwards.
      auto at = next + std::chrono::milliseconds(pick(-300, 1500));
      at = std::max(at, t);
      // Sample the times before the tick: a write allowed at q must be
      // inside the lease as etcd holds it (renewed at etcd time r, so
      // sent at r - lag) minus the margin, and the key must still exist.
      for (int s = 0; s < 4; ++s) {
        auto q = t + (at - t) * s / 4;
        if (!k.may_write(q))
          continue;
        t = q;
        cp.expire_due();
        auto renewed = cp.lease_renewed_at(k.lease());
        REQUIRE(renewed.has_value());
        CHECK(q < *renewed - lag + 6s - 1000ms);
        CHECK(q < k.last_renewed() + 5s);
      }
      t = at;
      next = k.tick(t);
      CHECK(next >= t);
      CHECK(k.reported() == k.may_write(t));
      if (k.lease() != lease && k.lease() != 0) {
        ++regrants;
        lease = k.lease();
      }
    }
    // Reachable for good: it registers and writes again.
    cp.set_unreachable(false);
    for (int i = 0; i < 3; ++i)
      next = k.tick(t = std::max(next, t));
    CHECK(k.may_write(t));
    CHECK(registered_lease(cp, "/parley/nodes/a") == k.lease());
  }
  // The schedule exercised both paths.
  CHECK(fences > 10);
  CHECK(regrants > 5);
  MESSAGE("fences " << fences << ", re-grants " << regrants);
}

TEST_CASE("lease_keeper_release_revokes_the_lease_and_fences_at_once") {
  time_point t = t0;
  memory_control_plane cp([&] { return t; });
  std::vector<bool> changes;
  lease_keeper k(cp, opts_6s(), [&](bool w) { changes.push_back(w); });
  k.tick(t);
  const auto lease = k.lease();
  t += 1s;
  REQUIRE(k.release().ok());
  CHECK(!k.may_write(t));
  CHECK(k.lease() == 0);
  CHECK(!cp.lease_renewed_at(lease).has_value());
  CHECK(registered_lease(cp, "/parley/nodes/a") == 0);
  CHECK(changes == std::vector<bool>{true, false});
  // Unreachable: the release still fences locally (the lease will lapse).
  k.tick(t);
  REQUIRE(k.may_write(t));
  cp.set_unreachable(true);
  CHECK(!k.release().ok());
  CHECK(!k.may_write(t));
  CHECK(changes == std::vector<bool>{true, false, true, false});
}
