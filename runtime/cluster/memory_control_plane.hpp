#pragma once

// An in-memory control_plane for simulations and unit tests: etcd's
// semantics where Parley relies on them, with no threads and no I/O.
// - One global revision (1 when empty) that grows by one per write
//   (a put, a transaction that changed something, a lease whose expiry or
//   revoke deleted keys); every key carries create_revision / mod_revision.
// - Leases with a TTL in seconds against an injected clock: a lease expires
//   when now > its last renewal + TTL. Expiry is observed at the start of
//   every call (and by expire_due()); it deletes the lease's keys in one
//   revision, as etcd does.
// - Transactions compare mod_revision / create_revision (0 = absent) /
//   value and run put / del / prefix-range ops of one branch atomically.
// - Watches replay the kept history from their start revision and then
//   follow new events, in revision order. compact(rev) drops history before
//   `rev`; a watch that needs it stops with cp_errc::compacted.
// Delivery: with delivery::immediate (the default) every call delivers the
// pending watch events on the calling thread before it returns (a call made
// from inside a callback only queues; the outer call delivers). With
// delivery::manual nothing is delivered until the test calls deliver().
// Thread-safe (one mutex); callbacks run outside it, one at a time.
// Several simulated nodes share one plane through memory_cp_client, each
// with its own unreachable switch (memory_cp_client.hpp).

#include "runtime/cluster/control_plane.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace parley::cluster {

/// Reads the simulated time (a manual clock the test advances).
using cp_clock = std::function<std::chrono::steady_clock::time_point()>;

class memory_cp_client; // one node's own connection: memory_cp_client.hpp

/// The in-memory control plane. See the file comment for its contract.
class memory_control_plane final : public control_plane {
public:
  using time_point = std::chrono::steady_clock::time_point;

  /// When watch callbacks run.
  enum class delivery { immediate, manual };

  explicit memory_control_plane(cp_clock now,
                                delivery mode = delivery::immediate);
  ~memory_control_plane() override;

  cp_result<int64_t> grant(int64_t ttl_s) override;
  cp_result<int64_t> keep_alive(int64_t lease) override;
  cp_result<cp_done> revoke(int64_t lease) override;
  cp_result<int64_t> put(const std::string& key, const std::string& value,
                         int64_t lease = 0) override;
  cp_result<range_result> range(const std::string& prefix) override;
  cp_result<txn_result> txn(const txn_request& req) override;
  /// Never fails at once: a watch made while unreachable waits, like etcd's
  /// client reconnecting; start_revision 0 = after the current revision.
  std::unique_ptr<watch_handle>
  watch(const std::string& prefix, int64_t start_revision,
        watch_callback on_event,
        watch_failure_callback on_failure = {}) override;

  // -- simulation controls ---------------------------------------------------

  /// While on, every call fails with `code` (unreachable or timeout) and no
  /// watch event is delivered (they wait, as for a dropped stream). Leases
  /// keep expiring meanwhile: the server runs, the client cannot reach it.
  void set_unreachable(bool on, cp_errc code = cp_errc::unreachable);
  /// Expires every lease whose last renewal + TTL lies before now.
  void expire_due();
  /// Delivers pending watch events and failures; how many callbacks ran.
  /// Delivers nothing while unreachable.
  size_t deliver();
  /// Drops history before `rev` (etcd's compaction). Fails with `server`
  /// for a future revision and `compacted` if already compacted past it.
  cp_result<cp_done> compact(int64_t rev);
  /// The current revision (1 before the first write).
  int64_t revision() const;
  /// When `lease` was last granted or renewed; nullopt if it is gone.
  std::optional<time_point> lease_renewed_at(int64_t lease) const;

private:
  friend class memory_cp_client;

  struct lease_rec {
    int64_t ttl_s = 0;
    time_point renewed;
    std::set<std::string> keys;
  };
  struct watch_rec;
  using lock = std::unique_lock<std::mutex>;

  /// Expires due leases and answers the unreachable error, if any.
  std::optional<cp_error> enter(const lock&);
  void expire_locked(time_point now);
  /// Deletes `lease` and its keys (one revision if any key existed).
  void drop_lease_locked(int64_t lease);
  void put_locked(const std::string& key, const std::string& value,
                  int64_t lease, int64_t rev);
  bool del_locked(const std::string& key, int64_t rev);
  range_result range_locked(const std::string& prefix) const;
  bool compare_locked(const txn_compare& c) const;
  /// deliver() if the mode is immediate.
  void settle();
  /// watch() for a client: its events wait while `*cut` is true.
  std::unique_ptr<watch_handle>
  watch_for(const std::string& prefix, int64_t start_revision,
            watch_callback on_event, watch_failure_callback on_failure,
            std::shared_ptr<const std::atomic<bool>> cut);

  cp_clock now_;
  delivery mode_;
  mutable std::mutex mtx_;
  int64_t revision_ = 1;
  int64_t compact_revision_ = 0;
  int64_t next_lease_ = 7001;
  std::map<std::string, kv_entry> kvs_;
  std::map<int64_t, lease_rec> leases_;
  std::deque<watch_event> history_; ///< in revision order
  uint64_t history_base_ = 0;       ///< sequence number of history_[0]
  std::vector<std::shared_ptr<watch_rec>> watches_;
  bool unreachable_ = false;
  cp_errc unreachable_code_ = cp_errc::unreachable;
  bool delivering_ = false;
};

} // namespace parley::cluster
