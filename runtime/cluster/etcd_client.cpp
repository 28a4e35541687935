#include "runtime/cluster/etcd_client.hpp"

#include "runtime/cluster/etcd_json.hpp"

namespace parley::cluster {

etcd_client::etcd_client(etcd_options opts) : opts_(std::move(opts)) {
}

cp_result<std::string> etcd_client::call(const char* target,
                                         const std::string& body) {
  auto res = http_post(opts_.at, target, body, opts_.call_deadline);
  if (!res)
    return res.error();
  if (res->status != 200)
    return etcd_json::error_of(res->status, res->body);
  return std::move(res->body);
}

cp_result<int64_t> etcd_client::grant(int64_t ttl_s) {
  auto body = call("/v3/lease/grant", etcd_json::grant_body(ttl_s));
  if (!body)
    return body.error();
  return etcd_json::parse_grant(body.value());
}

cp_result<int64_t> etcd_client::keep_alive(int64_t lease) {
  auto body = call("/v3/lease/keepalive", etcd_json::lease_id_body(lease));
  if (!body)
    return body.error();
  return etcd_json::parse_keep_alive(body.value());
}

cp_result<cp_done> etcd_client::revoke(int64_t lease) {
  auto body = call("/v3/lease/revoke", etcd_json::lease_id_body(lease));
  if (!body)
    return body.error();
  auto rev = etcd_json::parse_revision(body.value());
  if (!rev)
    return rev.error();
  return cp_done{};
}

cp_result<int64_t> etcd_client::put(const std::string& key,
                                    const std::string& value, int64_t lease) {
  auto body = call("/v3/kv/put", etcd_json::put_body(key, value, lease));
  if (!body)
    return body.error();
  return etcd_json::parse_revision(body.value());
}

cp_result<range_result> etcd_client::range(const std::string& prefix) {
  auto body = call("/v3/kv/range", etcd_json::range_body(prefix));
  if (!body)
    return body.error();
  return etcd_json::parse_range(body.value());
}

cp_result<txn_result> etcd_client::txn(const txn_request& req) {
  auto body = call("/v3/kv/txn", etcd_json::txn_body(req));
  if (!body)
    return body.error();
  return etcd_json::parse_txn(body.value());
}

std::unique_ptr<watch_handle>
etcd_client::watch(const std::string& prefix, int64_t start_revision,
                   watch_callback on_event, watch_failure_callback on_failure) {
  return start_etcd_watch(opts_, prefix, start_revision, std::move(on_event),
                          std::move(on_failure));
}

bool etcd_client::healthy() {
  auto res = http_get(opts_.at, "/health", opts_.call_deadline);
  return res && res->status == 200
         && res->body.find("\"health\":\"true\"") != std::string::npos;
}

} // namespace parley::cluster
