#pragma once

// A node's cluster settings (issue 22): where etcd is, which node this is,
// where it publishes its actors over CAF's middleman, how it keeps its
// lease. Plain values and their checks; no CAF. An empty `etcd` means a
// single node: no etcd, no middleman, nothing of the cluster starts.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::cluster {

/// A host and port (IPv4 or IPv6 literal, or "localhost").
struct host_port {
  std::string host;
  uint16_t port = 0;
};

/// Parses "HOST:PORT" / "[V6]:PORT"; nullopt if malformed.
std::optional<host_port> parse_host_port(const std::string& text);

/// Whether `host` is a loopback or private (RFC 1918, RFC 4193, link-local)
/// address literal, or "localhost": the only addresses the cluster port may
/// bind. 0.0.0.0 and :: are refused (they open it on every interface).
bool private_or_loopback(const std::string& host);

struct cluster_options {
  std::string etcd;           ///< etcd's client URL; empty: single node
  std::string name = "parley"; ///< etcd key prefix /parley/<name>/
  uint64_t node = 0;          ///< this node's id (1-65535)
  std::string listen = "127.0.0.1:0"; ///< BASP address (port 0: any free)
  /// Owners of the first map, if this node creates it (partition p goes
  /// to initial_nodes[p % n]); empty: this node only.
  std::vector<uint64_t> initial_nodes;
  std::chrono::seconds lease_ttl{5};
  std::chrono::milliseconds fence_margin{1500};
  std::string tls_cert, tls_key, tls_ca; ///< mutual TLS: all or none

  bool enabled() const {
    return !etcd.empty();
  }

  /// The key prefix, "/parley/<name>/".
  std::string prefix() const {
    return "/parley/" + name + "/";
  }
};

/// Parses "1,2,3" into node ids; nullopt on anything else (an id of 0,
/// over 65535, a repeat, an empty item).
std::optional<std::vector<uint64_t>> parse_node_list(const std::string& text);

/// Checks `opts` (when enabled); returns a message naming the first bad
/// option (as --cluster.NAME), or empty.
std::string validate(const cluster_options& opts);

} // namespace parley::cluster
