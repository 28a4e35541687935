// The in-memory control plane keeps etcd's semantics that Parley relies on:
// revisions, compare-and-swap, lease expiry against an injected clock,
// watches (replay, live, compacted) and the unreachable switch. No sleeps:
// time is a variable the test advances.

#include <doctest/doctest.h>

#include "runtime/cluster/memory_control_plane.hpp"
#include "runtime/cluster/memory_cp_client.hpp"

#include <optional>
#include <vector>

using namespace parley::cluster;
using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;

namespace {

struct manual_clock {
  time_point t = time_point{} + 1h;
  cp_clock fn() {
    return [this] { return t; };
  }
};

/// Collects a watch's events and its failure.
struct event_log {
  std::vector<watch_event> events;
  std::optional<cp_error> failure;
  watch_callback on_event() {
    return [this](const watch_event& ev) { events.push_back(ev); };
  }
  watch_failure_callback on_failure() {
    return [this](const cp_error& e) { failure = e; };
  }
};

txn_op put_op(std::string key, std::string value, int64_t lease = 0) {
  return {txn_op::kind::put, std::move(key), std::move(value), lease};
}

txn_op del_op(std::string key) {
  return {txn_op::kind::del, std::move(key), {}, 0};
}

txn_op range_op(std::string prefix) {
  return {txn_op::kind::range, std::move(prefix), {}, 0};
}

} // namespace

TEST_CASE("memory_cp_revision_grows_by_one_per_write_and_keys_keep_theirs") {
  manual_clock clock;
  memory_control_plane cp(clock.fn());
  CHECK(cp.revision() == 1);
  CHECK(cp.put("/k/b", "1").value() == 2);
  CHECK(cp.put("/k/a", "1").value() == 3);
  CHECK(cp.put("/k/b", "2").value() == 4);
  REQUIRE(cp.put("/k0", "outside the prefix").ok());
  // Reads, grants, a failed compare and a delete of nothing write nothing.
  REQUIRE(cp.grant(5).ok());
  txn_request nothing;
  nothing.success = {del_op("/k/absent"), range_op("/k/")};
  auto n = cp.txn(nothing);
  REQUIRE(n.ok());
  CHECK(n->revision == 5);
  auto r = cp.range("/k/");
  REQUIRE(r.ok());
  CHECK(r->revision == 5);
  REQUIRE(r->kvs.size() == 2);
  CHECK(r->kvs[0].key == "/k/a"); // key order, not write order
  CHECK(r->kvs[1].key == "/k/b");
  CHECK(r->kvs[1].value == "2");
  CHECK(r->kvs[1].create_revision == 2);
  CHECK(r->kvs[1].mod_revision == 4);
  // Several writes of one transaction share one revision.
  txn_request two;
  two.success = {put_op("/k/a", "x"), del_op("/k/b"), put_op("/k/c", "y")};
  auto t = cp.txn(two);
  REQUIRE(t.ok());
  CHECK(t->revision == 6);
  auto after = cp.range("/k/");
  REQUIRE(after->kvs.size() == 2);
  CHECK(after->kvs[0].mod_revision == 6);
  CHECK(after->kvs[0].create_revision == 3);
  CHECK(after->kvs[1].key == "/k/c");
  CHECK(after->kvs[1].create_revision == 6);
  // A deleted and re-created key starts a new life.
  REQUIRE(cp.put("/k/b", "again").ok());
  CHECK(cp.range("/k/b")->kvs[0].create_revision == 7);
  CHECK(cp.range("")->kvs.size() == 4); // the empty prefix is every key
}

TEST_CASE("memory_cp_txn_compare_and_swap_runs_exactly_one_branch") {
  manual_clock clock;
  memory_control_plane cp(clock.fn());
  txn_request create;
  create.compares.push_back(
    {"/map", txn_compare::target_kind::create_revision, 0, {}});
  create.success.push_back(put_op("/map", "v1"));
  create.failure.push_back(range_op("/map"));
  auto first = cp.txn(create);
  REQUIRE(first.ok());
  CHECK(first->succeeded);
  CHECK(first->ranges.empty());
  auto again = cp.txn(create);
  REQUIRE(again.ok());
  CHECK(!again->succeeded);
  CHECK(again->revision == first->revision); // nothing written
  REQUIRE(again->ranges.size() == 1);
  REQUIRE(again->ranges[0].kvs.size() == 1);
  CHECK(again->ranges[0].kvs[0].value == "v1");

  txn_request swap;
  swap.compares.push_back(
    {"/map", txn_compare::target_kind::mod_revision, first->revision, {}});
  swap.success.push_back(put_op("/map", "v2"));
  swap.failure.push_back(range_op("/map"));
  auto ok = cp.txn(swap);
  REQUIRE(ok.ok());
  CHECK(ok->succeeded);
  CHECK(ok->revision == first->revision + 1);
  auto stale = cp.txn(swap);
  REQUIRE(stale.ok());
  CHECK(!stale->succeeded);
  REQUIRE(stale->ranges.size() == 1);
  CHECK(stale->ranges[0].kvs[0].value == "v2");
  CHECK(stale->ranges[0].kvs[0].mod_revision == ok->revision);

  // All compares must hold; a value compare on an absent key fails.
  txn_request both;
  both.compares.push_back({"/map", txn_compare::target_kind::value, 0, "v2"});
  both.compares.push_back({"/nope", txn_compare::target_kind::value, 0, ""});
  both.success.push_back(del_op("/map"));
  CHECK(!cp.txn(both)->succeeded);
  both.compares.pop_back();
  CHECK(cp.txn(both)->succeeded);
  CHECK(cp.range("/map")->kvs.empty());

  // A put under a lease that does not exist refuses the whole branch.
  const auto rev = cp.revision();
  txn_request bad;
  bad.success = {put_op("/a", "1"), put_op("/b", "2", 424242)};
  auto refused = cp.txn(bad);
  REQUIRE(!refused.ok());
  CHECK(refused.error().code == cp_errc::lease_gone);
  CHECK(cp.revision() == rev);
  CHECK(cp.range("/a")->kvs.empty());
}

TEST_CASE("memory_cp_lease_expiry_deletes_its_keys_and_keep_alive_extends_it") {
  manual_clock clock;
  memory_control_plane cp(clock.fn());
  event_log log;
  auto w = cp.watch("/n/", 0, log.on_event());
  auto lease = cp.grant(5);
  REQUIRE(lease.ok());
  REQUIRE(cp.put("/n/a", "1", lease.value()).ok());
  REQUIRE(cp.put("/n/b", "2", lease.value()).ok());
  REQUIRE(cp.put("/n/c", "kept", 0).ok());
  // Renewed at +3 s: alive until +8 s inclusive.
  clock.t += 3s;
  CHECK(cp.keep_alive(lease.value()).value() == 5);
  clock.t += 5s;
  cp.expire_due();
  CHECK(cp.range("/n/")->kvs.size() == 3);
  CHECK(cp.lease_renewed_at(lease.value()).has_value());
  const auto before = cp.revision();
  clock.t += 1ms; // now > renewal + TTL: observed by the next call
  auto r = cp.range("/n/");
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].key == "/n/c");
  CHECK(cp.revision() == before + 1); // both deletes in one revision
  CHECK(!cp.lease_renewed_at(lease.value()).has_value());
  auto gone = cp.keep_alive(lease.value());
  REQUIRE(!gone.ok());
  CHECK(gone.error().code == cp_errc::lease_gone);
  CHECK(cp.put("/n/d", "x", lease.value()).error().code
        == cp_errc::lease_gone);
  // The watch saw the deletes, in the expiry's revision.
  REQUIRE(log.events.size() == 5);
  CHECK(log.events[3].type == watch_event::kind::del);
  CHECK(log.events[3].mod_revision == before + 1);
  CHECK(log.events[4].mod_revision == before + 1);

  // Revoke deletes at once; a second revoke finds nothing.
  auto l2 = cp.grant(60);
  REQUIRE(cp.put("/n/e", "y", l2.value()).ok());
  REQUIRE(cp.revoke(l2.value()).ok());
  CHECK(cp.range("/n/e")->kvs.empty());
  CHECK(cp.revoke(l2.value()).error().code == cp_errc::lease_gone);
  // Re-putting a key without a lease detaches it from its old lease.
  auto l3 = cp.grant(1);
  REQUIRE(cp.put("/n/f", "leased", l3.value()).ok());
  REQUIRE(cp.put("/n/f", "free", 0).ok());
  clock.t += 2s;
  CHECK(cp.range("/n/f")->kvs.size() == 1);
}

TEST_CASE("memory_cp_watch_replays_history_then_follows_live_in_order") {
  manual_clock clock;
  memory_control_plane cp(clock.fn());
  auto a = cp.put("/r/a", "1");
  REQUIRE(cp.put("/other", "not watched").ok());
  REQUIRE(cp.put("/r/b", "2").ok());
  txn_request del;
  del.success.push_back(del_op("/r/a"));
  REQUIRE(cp.txn(del).ok());
  event_log log, now_log;
  auto w = cp.watch("/r/", a.value(), log.on_event());
  auto from_now = cp.watch("/r/", 0, now_log.on_event());
  REQUIRE(log.events.size() == 3); // delivered before watch() returned
  CHECK(log.events[0].key == "/r/a");
  CHECK(log.events[0].value == "1");
  CHECK(log.events[1].key == "/r/b");
  CHECK(log.events[2].type == watch_event::kind::del);
  CHECK(now_log.events.empty());
  auto live = cp.put("/r/c", "3");
  REQUIRE(log.events.size() == 4);
  CHECK(log.events[3].key == "/r/c");
  CHECK(log.events[3].mod_revision == live.value());
  CHECK(w->last_revision() == live.value());
  REQUIRE(now_log.events.size() == 1);
  for (size_t i = 1; i < log.events.size(); ++i)
    CHECK(log.events[i - 1].mod_revision < log.events[i].mod_revision);
  w->cancel();
  REQUIRE(cp.put("/r/d", "4").ok());
  CHECK(log.events.size() == 4); // nothing after cancel
  CHECK(now_log.events.size() == 2);
  // A write made inside a callback is delivered after it, in order.
  event_log nested;
  auto chain = cp.watch("/q/", 0, [&](const watch_event& ev) {
    nested.events.push_back(ev);
    if (ev.value == "first")
      REQUIRE(cp.put("/q/2", "second").ok());
  });
  REQUIRE(cp.put("/q/1", "first").ok());
  REQUIRE(nested.events.size() == 2);
  CHECK(nested.events[1].value == "second");
}

TEST_CASE("memory_cp_watch_from_a_compacted_revision_fails_with_compacted") {
  manual_clock clock;
  memory_control_plane cp(clock.fn());
  auto a = cp.put("/c/a", "1");
  auto b = cp.put("/c/b", "2");
  REQUIRE(cp.compact(b.value()).ok());
  CHECK(cp.compact(b.value()).error().code == cp_errc::compacted);
  CHECK(cp.compact(cp.revision() + 1).error().code == cp_errc::server);
  event_log old_log, kept_log;
  auto w1 = cp.watch("/c/", a.value(), old_log.on_event(),
                     old_log.on_failure());
  REQUIRE(old_log.failure.has_value());
  CHECK(old_log.failure->code == cp_errc::compacted);
  CHECK(old_log.events.empty());
  auto w2 = cp.watch("/c/", b.value(), kept_log.on_event(),
                     kept_log.on_failure());
  CHECK(!kept_log.failure.has_value());
  REQUIRE(kept_log.events.size() == 1);
  CHECK(kept_log.events[0].key == "/c/b");
  // The failed watch stays silent afterwards.
  REQUIRE(cp.put("/c/z", "3").ok());
  CHECK(old_log.events.empty());
  CHECK(kept_log.events.size() == 2);
}

TEST_CASE("memory_cp_manual_delivery_waits_for_the_pump") {
  manual_clock clock;
  memory_control_plane cp(clock.fn(), memory_control_plane::delivery::manual);
  event_log log, lagging;
  auto w = cp.watch("/m/", 0, log.on_event());
  auto w2 = cp.watch("/m/", 0, lagging.on_event(), lagging.on_failure());
  REQUIRE(cp.put("/m/a", "1").ok());
  REQUIRE(cp.put("/m/b", "2").ok());
  CHECK(log.events.empty());
  CHECK(cp.deliver() == 4); // two events to each watch
  CHECK(log.events.size() == 2);
  // A watch left behind by a compaction fails when the pump reaches it.
  REQUIRE(cp.put("/m/c", "3").ok());
  REQUIRE(cp.put("/m/d", "4").ok());
  REQUIRE(cp.compact(cp.revision()).ok());
  w.reset();
  cp.deliver();
  CHECK(log.events.size() == 2);
  REQUIRE(lagging.failure.has_value());
  CHECK(lagging.failure->code == cp_errc::compacted);
  CHECK(lagging.events.size() == 2);
}

TEST_CASE("memory_cp_unreachable_switch_fails_every_call_and_holds_events") {
  manual_clock clock;
  memory_control_plane cp(clock.fn());
  auto lease = cp.grant(2);
  REQUIRE(cp.put("/u/a", "1", lease.value()).ok());
  event_log log;
  auto w = cp.watch("/u/", 0, log.on_event());
  for (auto code : {cp_errc::unreachable, cp_errc::timeout}) {
    cp.set_unreachable(true, code);
    CHECK(cp.grant(5).error().code == code);
    CHECK(cp.keep_alive(lease.value()).error().code == code);
    CHECK(cp.put("/u/b", "x").error().code == code);
    CHECK(cp.range("/u/").error().code == code);
    CHECK(cp.txn(txn_request{}).error().code == code);
    CHECK(cp.revoke(lease.value()).error().code == code);
  }
  // etcd keeps running: the lease expires while the client cannot renew,
  // and the watch sees the delete only when it can reach etcd again.
  clock.t += 3s;
  cp.expire_due();
  CHECK(log.events.empty());
  cp.set_unreachable(false);
  REQUIRE(log.events.size() == 1);
  CHECK(log.events[0].type == watch_event::kind::del);
  CHECK(cp.range("/u/")->kvs.empty());
  CHECK(cp.keep_alive(lease.value()).error().code == cp_errc::lease_gone);
}

TEST_CASE("memory_cp_client_is_cut_off_alone_while_others_keep_the_store") {
  manual_clock clock;
  memory_control_plane cp(clock.fn());
  auto a = std::make_unique<memory_cp_client>(cp);
  auto b = std::make_unique<memory_cp_client>(cp);
  auto lease = a->grant(2);
  REQUIRE(lease.ok());
  REQUIRE(a->put("/nodes/a", "addr-a", lease.value()).ok());
  event_log a_log, b_log;
  auto wa = a->watch("/nodes/", 0, a_log.on_event(), a_log.on_failure());
  auto wb = b->watch("/nodes/", 0, b_log.on_event());
  a->set_unreachable(true, cp_errc::timeout);
  CHECK(a->keep_alive(lease.value()).error().code == cp_errc::timeout);
  CHECK(a->range("/nodes/").error().code == cp_errc::timeout);
  // b still reaches the store and sees a's lease lapse.
  clock.t += 3s;
  auto r = b->range("/nodes/");
  REQUIRE(r.ok());
  CHECK(r->kvs.empty());
  REQUIRE(b->put("/nodes/b", "addr-b").ok());
  CHECK(b_log.events.size() == 2);
  CHECK(a_log.events.empty()); // a's watch waits ...
  a->set_unreachable(false);
  REQUIRE(a_log.events.size() == 2); // ... and resumes where it was
  CHECK(a_log.events[0].type == watch_event::kind::del);
  CHECK(a_log.events[1].key == "/nodes/b");
  CHECK(a->keep_alive(lease.value()).error().code == cp_errc::lease_gone);
  // Compacted past a cut-off client's position: it fails on reconnect.
  a->set_unreachable(true);
  REQUIRE(b->put("/nodes/c", "addr-c").ok());
  REQUIRE(b->put("/nodes/d", "addr-d").ok());
  REQUIRE(cp.compact(cp.revision()).ok()); // drops /nodes/c's event
  a->set_unreachable(false);
  REQUIRE(a_log.failure.has_value());
  CHECK(a_log.failure->code == cp_errc::compacted);
  CHECK(a_log.events.size() == 2);
}
