#pragma once

// The control plane as Parley sees it: leases, a key-value store with
// revisions, compare-and-swap transactions and watches (etcd's model). One
// small interface, so that simulations can replace etcd with a fake. Plain
// value types only: no CAF, no Beast. Every call returns within its
// deadline, with a value or a cp_error; none throws.

#include "runtime/cluster/cp_result.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace parley::cluster {

/// One key as stored, with etcd's revisions.
struct kv_entry {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

/// The keys of a range read and the store's revision when it was read.
struct range_result {
  std::vector<kv_entry> kvs;
  int64_t revision = 0;
};

/// One comparison of a transaction, on one key.
struct txn_compare {
  enum class target_kind { mod_revision, create_revision, value };
  std::string key;
  target_kind target = target_kind::mod_revision;
  int64_t revision = 0; ///< for mod_revision / create_revision (0 = absent)
  std::string value;    ///< for value
};

/// One operation of a transaction's success or failure branch.
struct txn_op {
  enum class kind { put, del, range };
  kind op = kind::put;
  std::string key;   ///< exact key (put, del) or prefix (range)
  std::string value; ///< put only
  int64_t lease = 0; ///< put only
};

/// A compare-and-swap transaction: if every compare holds, run `success`,
/// else `failure`.
struct txn_request {
  std::vector<txn_compare> compares;
  std::vector<txn_op> success;
  std::vector<txn_op> failure;
};

/// What a transaction did: which branch ran, the revision after it, and
/// the result of each range op of that branch, in order.
struct txn_result {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<range_result> ranges;
};

/// One change seen by a watch.
struct watch_event {
  enum class kind { put, del };
  kind type = kind::put;
  std::string key;
  std::string value; ///< empty for del
  int64_t mod_revision = 0;
};

/// Called on the watch's own thread, once per event, in revision order.
/// It must not throw, and must not cancel its own watch.
using watch_callback = std::function<void(const watch_event&)>;

/// Called on the watch's own thread, at most once, when the watch stops
/// for good: `compacted` if its start revision is no longer kept (read
/// the state again with range() and watch from its revision + 1).
using watch_failure_callback = std::function<void(const cp_error&)>;

/// A running watch. Cancel (or destroy) it to stop; no callback runs after
/// cancel() returns.
class watch_handle {
public:
  virtual ~watch_handle() = default;
  /// Stops the watch and joins its thread. Idempotent.
  virtual void cancel() = 0;
  /// The mod_revision of the last event delivered (0 if none yet).
  virtual int64_t last_revision() const = 0;
};

/// The control plane. Calls block the calling thread (never a CAF
/// scheduler thread) for at most the implementation's deadline.
class control_plane {
public:
  virtual ~control_plane() = default;

  /// A new lease living `ttl_s` seconds unless kept alive; its id.
  virtual cp_result<int64_t> grant(int64_t ttl_s) = 0;
  /// Renews `lease`; its remaining TTL in seconds. lease_gone if it
  /// expired or was revoked.
  virtual cp_result<int64_t> keep_alive(int64_t lease) = 0;
  /// Revokes `lease`; the keys attached to it are deleted at once.
  virtual cp_result<cp_done> revoke(int64_t lease) = 0;
  /// Writes `key` (attached to `lease` unless 0); the revision after it.
  virtual cp_result<int64_t> put(const std::string& key,
                                 const std::string& value,
                                 int64_t lease = 0) = 0;
  /// Every key starting with `prefix`, in key order.
  virtual cp_result<range_result> range(const std::string& prefix) = 0;
  /// Runs a compare-and-swap transaction.
  virtual cp_result<txn_result> txn(const txn_request& req) = 0;
  /// Watches every key starting with `prefix` from `start_revision` (0 =
  /// from now). After a dropped connection it reconnects and resumes after
  /// the last revision seen, so no event is lost or repeated.
  virtual std::unique_ptr<watch_handle>
  watch(const std::string& prefix, int64_t start_revision,
        watch_callback on_event, watch_failure_callback on_failure = {}) = 0;
};

/// The end of a prefix range: `prefix` with its last byte incremented
/// (dropping trailing 0xff bytes); "\0" (all keys) for an empty prefix.
std::string prefix_range_end(const std::string& prefix);

} // namespace parley::cluster
