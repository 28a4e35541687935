#pragma once

// etcd v3 JSON gateway bodies: building requests and reading answers.
// Pure functions over text, so every reader of outside input is tested
// with garbage, truncation and oversized input (tests/unit/etcd_json_test).
// Keys and values travel base64-encoded; 64-bit numbers as strings.

#include "runtime/cluster/control_plane.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace parley::cluster::etcd_json {

/// Longest answer (or watch line) accepted; longer is bad_answer unread.
constexpr size_t max_answer_bytes = 4 << 20;

std::string b64_encode(std::string_view in);
/// Strict RFC 4648 base64 (padding required); nullopt on anything else.
std::optional<std::string> b64_decode(std::string_view in);

// -- requests ---------------------------------------------------------------
std::string grant_body(int64_t ttl_s);
std::string lease_id_body(int64_t lease);
std::string put_body(const std::string& key, const std::string& value,
                     int64_t lease);
std::string range_body(const std::string& prefix);
std::string txn_body(const txn_request& req);
/// `progress_notify`: ask etcd for periodic empty answers on a quiet watch.
std::string watch_body(const std::string& prefix, int64_t start_revision,
                       bool progress_notify = false);

// -- answers (HTTP 200 bodies) ------------------------------------------------
cp_result<int64_t> parse_grant(std::string_view body);
/// The remaining TTL; lease_gone if etcd no longer knows the lease.
cp_result<int64_t> parse_keep_alive(std::string_view body);
/// header.revision of any answer (put, revoke, delete).
cp_result<int64_t> parse_revision(std::string_view body);
cp_result<range_result> parse_range(std::string_view body);
cp_result<txn_result> parse_txn(std::string_view body);

/// One line of a watch stream.
struct watch_message {
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0; ///< > 0: the start revision was compacted
  int64_t revision = 0;         ///< header.revision
  std::vector<watch_event> events;
};
cp_result<watch_message> parse_watch_line(std::string_view line);

/// The error of a non-200 answer: etcd's message if the body has one
/// (lease_gone for "requested lease not found"), else the status.
cp_error error_of(unsigned status, std::string_view body);

} // namespace parley::cluster::etcd_json
