#include "runtime/cluster/memory_cp_client.hpp"

namespace parley::cluster {

memory_cp_client::memory_cp_client(memory_control_plane& plane)
  : plane_(plane), cut_(std::make_shared<std::atomic<bool>>(false)) {
}

std::optional<cp_error> memory_cp_client::cut_error() {
  if (!cut_->load())
    return std::nullopt;
  plane_.expire_due(); // etcd runs on: what is due expires all the same
  return cp_error{code_.load(),
                  "control plane unreachable from this client (simulated)"};
}

cp_result<int64_t> memory_cp_client::grant(int64_t ttl_s) {
  if (auto err = cut_error())
    return *err;
  return plane_.grant(ttl_s);
}

cp_result<int64_t> memory_cp_client::keep_alive(int64_t lease) {
  if (auto err = cut_error())
    return *err;
  return plane_.keep_alive(lease);
}

cp_result<cp_done> memory_cp_client::revoke(int64_t lease) {
  if (auto err = cut_error())
    return *err;
  return plane_.revoke(lease);
}

cp_result<int64_t> memory_cp_client::put(const std::string& key,
                                         const std::string& value,
                                         int64_t lease) {
  if (auto err = cut_error())
    return *err;
  return plane_.put(key, value, lease);
}

cp_result<range_result> memory_cp_client::range(const std::string& prefix) {
  if (auto err = cut_error())
    return *err;
  return plane_.range(prefix);
}

cp_result<txn_result> memory_cp_client::txn(const txn_request& req) {
  if (auto err = cut_error())
    return *err;
  return plane_.txn(req);
}

std::unique_ptr<watch_handle>
memory_cp_client::watch(const std::string& prefix, int64_t start_revision,
                        watch_callback on_event,
                        watch_failure_callback on_failure) {
  return plane_.watch_for(prefix, start_revision, std::move(on_event),
                          std::move(on_failure), cut_);
}

void memory_cp_client::set_unreachable(bool on, cp_errc code) {
  code_ = code;
  cut_->store(on);
  if (!on)
    plane_.settle(); // deliver what waited for this client
}

} // namespace parley::cluster
