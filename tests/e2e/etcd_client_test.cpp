// The control-plane client against a real etcd (Debian's etcd-server,
// started per test on free loopback ports with its own data dir).

#include <doctest/doctest.h>

#include "etcd_fixture.hpp"

#include "runtime/cluster/http_call.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

using namespace parley::cluster;
using parley::e2e::etcd_process;

namespace {

/// Collects a watch's events; waits for a count with a generous bound.
struct event_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<watch_event> events;

  watch_callback callback() {
    return [this](const watch_event& ev) {
      std::lock_guard<std::mutex> guard(mtx);
      events.push_back(ev);
      cv.notify_all();
    };
  }

  /// False if fewer than `n` events came within the bound.
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lock(mtx);
    return cv.wait_for(lock, std::chrono::seconds(20),
                       [&] { return events.size() >= n; });
  }
};

} // namespace

TEST_CASE("etcd_lease_put_range_and_revoke") {
  etcd_process etcd;
  REQUIRE(etcd.start());
  etcd_client c(etcd.options());
  auto lease = c.grant(30);
  REQUIRE(lease.ok());
  auto rev = c.put("/parley/nodes/a", "addr-a", lease.value());
  REQUIRE(rev.ok());
  REQUIRE(c.put("/parley/other", "x").ok());
  REQUIRE(c.put("/parley/nodes0", "outside the prefix").ok());
  auto r = c.range("/parley/nodes/");
  REQUIRE(r.ok());
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].key == "/parley/nodes/a");
  CHECK(r->kvs[0].value == "addr-a");
  CHECK(r->kvs[0].lease == lease.value());
  CHECK(r->kvs[0].mod_revision == rev.value());
  CHECK(r->kvs[0].create_revision == rev.value());
  CHECK(r->revision >= rev.value());
  auto ttl = c.keep_alive(lease.value());
  REQUIRE(ttl.ok());
  CHECK(ttl.value() > 0);
  REQUIRE(c.revoke(lease.value()).ok());
  // The key is gone at once, and the lease cannot be renewed.
  auto after = c.range("/parley/nodes/");
  REQUIRE(after.ok());
  CHECK(after->kvs.empty());
  auto gone = c.keep_alive(lease.value());
  REQUIRE(!gone.ok());
  CHECK(gone.error().code == cp_errc::lease_gone);
  auto revoked_twice = c.revoke(lease.value());
  REQUIRE(!revoked_twice.ok());
  CHECK(revoked_twice.error().code == cp_errc::lease_gone);
}

TEST_CASE("etcd_txn_compare_and_swap_on_mod_revision") {
  etcd_process etcd;
  REQUIRE(etcd.start());
  etcd_client c(etcd.options());
  // Create only if absent: create_revision == 0.
  txn_request create;
  create.compares.push_back(
    {"/map", txn_compare::target_kind::create_revision, 0, {}});
  create.success.push_back({txn_op::kind::put, "/map", "v1", 0});
  auto first = c.txn(create);
  REQUIRE(first.ok());
  CHECK(first->succeeded);
  auto again = c.txn(create);
  REQUIRE(again.ok());
  CHECK(!again->succeeded);
  const auto rev1 = first->revision;

  txn_request swap;
  swap.compares.push_back(
    {"/map", txn_compare::target_kind::mod_revision, rev1, {}});
  swap.success.push_back({txn_op::kind::put, "/map", "v2", 0});
  swap.failure.push_back({txn_op::kind::range, "/map", {}, 0});
  auto ok = c.txn(swap);
  REQUIRE(ok.ok());
  CHECK(ok->succeeded);
  CHECK(ok->revision > rev1);
  CHECK(ok->ranges.empty());
  // The same compare is stale now: the failure branch's range comes back.
  auto stale = c.txn(swap);
  REQUIRE(stale.ok());
  CHECK(!stale->succeeded);
  REQUIRE(stale->ranges.size() == 1);
  REQUIRE(stale->ranges[0].kvs.size() == 1);
  CHECK(stale->ranges[0].kvs[0].value == "v2");
  CHECK(stale->ranges[0].kvs[0].mod_revision == ok->revision);
  // A compare on the value, and a delete in the success branch.
  txn_request del;
  del.compares.push_back({"/map", txn_compare::target_kind::value, 0, "v2"});
  del.success.push_back({txn_op::kind::del, "/map", {}, 0});
  auto d = c.txn(del);
  REQUIRE(d.ok());
  CHECK(d->succeeded);
  auto r = c.range("/map");
  REQUIRE(r.ok());
  CHECK(r->kvs.empty());
}

TEST_CASE("etcd_watch_delivers_put_then_delete_in_order") {
  etcd_process etcd;
  REQUIRE(etcd.start());
  etcd_client c(etcd.options());
  auto now = c.range("/w/");
  REQUIRE(now.ok());
  event_log log;
  auto w = c.watch("/w/", now->revision + 1, log.callback());
  auto put = c.put("/w/k", "hello");
  REQUIRE(put.ok());
  txn_request del;
  del.success.push_back({txn_op::kind::del, "/w/k", {}, 0});
  auto d = c.txn(del);
  REQUIRE(d.ok());
  REQUIRE(c.put("/elsewhere", "not watched").ok());
  REQUIRE(log.wait_for(2));
  w->cancel();
  std::lock_guard<std::mutex> guard(log.mtx);
  REQUIRE(log.events.size() == 2);
  CHECK(log.events[0].type == watch_event::kind::put);
  CHECK(log.events[0].key == "/w/k");
  CHECK(log.events[0].value == "hello");
  CHECK(log.events[0].mod_revision == put.value());
  CHECK(log.events[1].type == watch_event::kind::del);
  CHECK(log.events[1].key == "/w/k");
  CHECK(log.events[1].mod_revision == d->revision);
  CHECK(w->last_revision() == d->revision);
}

TEST_CASE("etcd_watch_from_an_old_revision_replays_since") {
  etcd_process etcd;
  REQUIRE(etcd.start());
  etcd_client c(etcd.options());
  auto a = c.put("/r/a", "1");
  REQUIRE(a.ok());
  REQUIRE(c.put("/r/b", "2").ok());
  txn_request del;
  del.success.push_back({txn_op::kind::del, "/r/a", {}, 0});
  REQUIRE(c.txn(del).ok());
  event_log log;
  auto w = c.watch("/r/", a.value(), log.callback());
  REQUIRE(log.wait_for(3));
  w.reset(); // destroying the handle cancels it
  std::lock_guard<std::mutex> guard(log.mtx);
  REQUIRE(log.events.size() == 3);
  CHECK(log.events[0].key == "/r/a");
  CHECK(log.events[1].key == "/r/b");
  CHECK(log.events[2].key == "/r/a");
  CHECK(log.events[2].type == watch_event::kind::del);
  CHECK(log.events[0].mod_revision < log.events[1].mod_revision);
  CHECK(log.events[1].mod_revision < log.events[2].mod_revision);
}

TEST_CASE("etcd_watch_survives_an_etcd_restart_without_losing_events") {
  etcd_process etcd;
  REQUIRE(etcd.start());
  etcd_client c(etcd.options());
  auto now = c.range("/s/");
  REQUIRE(now.ok());
  event_log log;
  auto w = c.watch("/s/", now->revision + 1, log.callback());
  REQUIRE(c.put("/s/1", "before").ok());
  REQUIRE(log.wait_for(1));
  etcd.stop(); // the watch's connection drops; it keeps retrying
  REQUIRE(etcd.start());
  REQUIRE(c.put("/s/2", "after").ok());
  REQUIRE(c.put("/s/3", "after").ok());
  REQUIRE(log.wait_for(3));
  w->cancel();
  std::lock_guard<std::mutex> guard(log.mtx);
  REQUIRE(log.events.size() == 3);
  CHECK(log.events[0].key == "/s/1");
  CHECK(log.events[1].key == "/s/2");
  CHECK(log.events[2].key == "/s/3");
}

TEST_CASE("etcd_watch_from_a_compacted_revision_fails_with_compacted") {
  etcd_process etcd;
  REQUIRE(etcd.start());
  etcd_client c(etcd.options());
  auto a = c.put("/c/a", "1");
  REQUIRE(a.ok());
  auto b = c.put("/c/b", "2");
  REQUIRE(b.ok());
  auto compact = http_post(etcd.options().at, "/v3/kv/compaction",
                           "{\"revision\":\"" + std::to_string(b.value())
                             + "\",\"physical\":true}",
                           std::chrono::seconds(5));
  REQUIRE(compact.ok());
  REQUIRE(compact->status == 200);
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<cp_error> failure;
  event_log log;
  auto w = c.watch("/c/", a.value(), log.callback(), [&](const cp_error& e) {
    std::lock_guard<std::mutex> guard(mtx);
    failure = e;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mtx);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(20),
                        [&] { return failure.has_value(); }));
  }
  w->cancel();
  CHECK(failure->code == cp_errc::compacted);
  std::lock_guard<std::mutex> guard(log.mtx);
  CHECK(log.events.empty());
}
