#pragma once

// control_plane over etcd 3.4's v3 JSON gateway (HTTP/1.1, Boost.Beast).
// Each call opens a connection, POSTs one JSON body and reads the whole
// answer within `call_deadline`; watches stream on their own thread
// (etcd_watch.cpp). Synchronous: call it from a thread of your own, never
// from a CAF scheduler thread.

#include "runtime/cluster/control_plane.hpp"
#include "runtime/cluster/http_call.hpp"

#include <chrono>

namespace parley::cluster {

/// How to reach etcd and how long a call may take.
struct etcd_options {
  endpoint at;
  std::chrono::milliseconds call_deadline{2000};
  /// Connecting and reading a watch's first answer.
  std::chrono::milliseconds watch_connect_deadline{2000};
  /// If > 0, a watch asks etcd for progress notifications and reconnects
  /// (resuming) when nothing comes for this long: run etcd with
  /// --experimental-watch-progress-notify-interval well below it. If 0,
  /// an established stream may stay idle forever (TCP keep-alive only).
  std::chrono::milliseconds watch_idle_deadline{0};
  /// Longest pause between reconnect attempts of a watch.
  std::chrono::milliseconds watch_max_backoff{2000};
};

/// The etcd implementation of control_plane.
class etcd_client final : public control_plane {
public:
  explicit etcd_client(etcd_options opts);

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

  /// Whether GET /health answers {"health":"true"} within the deadline.
  bool healthy();

private:
  /// POSTs `body` to `target`: the 200 answer's body, or the error.
  cp_result<std::string> call(const char* target, const std::string& body);

  etcd_options opts_;
};

/// Starts a watch over `opts` (etcd_watch.cpp).
std::unique_ptr<watch_handle> start_etcd_watch(const etcd_options& opts,
                                               const std::string& prefix,
                                               int64_t start_revision,
                                               watch_callback on_event,
                                               watch_failure_callback on_failure);

} // namespace parley::cluster
