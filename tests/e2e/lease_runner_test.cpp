// A node's lease against a real etcd (issue 22, "Ownership with fencing"):
// the lease runner registers the node under a lease and keeps it alive on
// its own thread; when etcd stops for longer than the lease, the node is
// told to stop writing (before the lease could lapse in etcd), and when
// etcd is back it is told it may write again, registered again; a clean
// stop removes the registration at once.

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "etcd_fixture.hpp"
#include "runtime/cluster/etcd_client.hpp"
#include "runtime/cluster/lease_runner.hpp"

using namespace parley::cluster;
using parley::e2e::etcd_process;

namespace {

/// The runner's reports, in order, with a bounded wait for the next one.
struct reports {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<bool> seen;

  void add(bool may_write) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      seen.push_back(may_write);
    }
    cv.notify_all();
  }

  /// True once `n` reports came (false after a generous bound: the test
  /// fails rather than asserting on time).
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lock{mtx};
    return cv.wait_for(lock, std::chrono::seconds(60),
                       [&] { return seen.size() >= n; });
  }

  std::vector<bool> all() {
    std::lock_guard<std::mutex> guard{mtx};
    return seen;
  }
};

} // namespace

TEST_CASE("lease_runner_registers_fences_while_etcd_is_down_and_resumes") {
  etcd_process etcd;
  REQUIRE(etcd.start());
  etcd_client cp(etcd.options());
  etcd_client observer(etcd.options());
  reports r;
  lease_keeper_options opts;
  opts.key = "/parley/test/nodes/7";
  opts.value = "127.0.0.1:1";
  opts.ttl = std::chrono::seconds(2);
  opts.margin = std::chrono::milliseconds(500);
  opts.retry_interval = std::chrono::milliseconds(100);
  lease_runner runner{cp, opts, [&](bool w) { r.add(w); }};
  // Registered: may write, and the key is there under a lease.
  REQUIRE(r.wait_for(1));
  CHECK(r.all() == std::vector<bool>{true});
  CHECK(runner.may_write());
  auto reg = observer.range(opts.key);
  REQUIRE(reg.ok());
  REQUIRE(reg->kvs.size() == 1);
  CHECK(reg->kvs[0].value == "127.0.0.1:1");
  CHECK(reg->kvs[0].lease != 0);
  // etcd down for longer than the lease: the node fences itself.
  etcd.stop();
  REQUIRE(r.wait_for(2));
  CHECK(r.all() == std::vector<bool>{true, false});
  CHECK_FALSE(runner.may_write());
  // etcd back: the lease renewed or granted anew, the node registered
  // again and told it may write.
  REQUIRE(etcd.start());
  REQUIRE(r.wait_for(3));
  CHECK(r.all() == std::vector<bool>{true, false, true});
  CHECK(runner.may_write());
  auto again = observer.range(opts.key);
  REQUIRE(again.ok());
  REQUIRE(again->kvs.size() == 1);
  CHECK(again->kvs[0].value == "127.0.0.1:1");
  // A clean stop: fenced, and the registration is gone at once.
  runner.stop(true);
  CHECK(r.all() == std::vector<bool>{true, false, true, false});
  CHECK_FALSE(runner.may_write());
  auto gone = observer.range(opts.key);
  REQUIRE(gone.ok());
  CHECK(gone->kvs.empty());
}
