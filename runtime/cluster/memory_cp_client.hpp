#pragma once

// A simulated node's own connection to a shared memory_control_plane, so
// that one node can lose etcd while the others keep it.

#include "runtime/cluster/memory_control_plane.hpp"

#include <atomic>
#include <memory>
#include <optional>

namespace parley::cluster {

/// One simulated node's connection to a shared memory_control_plane: the
/// same store, but its own switch, so one node can lose etcd while the
/// others keep it. While cut off, its calls fail with the chosen code
/// (leases still expire: etcd runs on) and its watches wait; they resume
/// where they were when it reconnects, or fail with compacted.
class memory_cp_client final : public control_plane {
public:
  /// `plane` must outlive the client and its watches.
  explicit memory_cp_client(memory_control_plane& plane);

  cp_result<int64_t> grant(int64_t ttl_s) override;
  cp_result<int64_t> keep_alive(int64_t lease) override;
  cp_result<cp_done> revoke(int64_t lease) override;
  cp_result<int64_t> put(const std::string& key, const std::string& value,
                         int64_t lease = 0) override;
  cp_result<range_result> range(const std::string& prefix) override;
  cp_result<txn_result> txn(const txn_request& req) override;
  std::unique_ptr<watch_handle>
  watch(const std::string& prefix, int64_t start_revision,
        watch_callback on_event,
        watch_failure_callback on_failure = {}) override;

  /// Cuts this client off (every call fails with `code`) or reconnects it.
  void set_unreachable(bool on, cp_errc code = cp_errc::unreachable);

private:
  /// The error while cut off (after letting due leases expire).
  std::optional<cp_error> cut_error();

  memory_control_plane& plane_;
  std::shared_ptr<std::atomic<bool>> cut_;
  std::atomic<cp_errc> code_{cp_errc::unreachable};
};

} // namespace parley::cluster
