#include "runtime/cluster/cluster_options.hpp"
#include "runtime/cluster/cluster_tls.hpp"

#include <algorithm>
#include <set>

namespace parley::cluster {

std::optional<host_port> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return std::nullopt;
  host_port hp;
  hp.host = text.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']')
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  else if (hp.host.find(':') != std::string::npos)
    return std::nullopt; // a bare IPv6 literal needs brackets
  auto digits = text.substr(colon + 1);
  if (digits.size() > 5
      || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  auto port = std::stoul(digits);
  if (port > 65535)
    return std::nullopt;
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

bool private_or_loopback(const std::string& host) {
  return peer_host_allowed(host); // one rule for binding and dialing
}

std::optional<std::vector<uint64_t>> parse_node_list(const std::string& text) {
  std::vector<uint64_t> out;
  std::set<uint64_t> seen;
  size_t pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    auto item = text.substr(pos, comma == std::string::npos ? std::string::npos
                                                            : comma - pos);
    if (item.empty() || item.size() > 5
        || item.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    auto id = std::stoul(item);
    if (id == 0 || id > 65535 || !seen.insert(id).second)
      return std::nullopt;
    out.push_back(id);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return out;
}

std::string validate(const cluster_options& opts) {
  if (!opts.enabled())
    return {};
  if (opts.etcd.rfind("http://", 0) != 0
      || !parse_host_port(opts.etcd.substr(7)))
    return "--cluster.etcd must be http://HOST:PORT, e.g. "
           "http://127.0.0.1:2379";
  if (opts.node == 0 || opts.node > 65535)
    return "--cluster.node must be 1-65535 (each node of a cluster its own)";
  if (opts.name.empty() || opts.name.size() > 64
      || opts.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
           != std::string::npos)
    return "--cluster.name must be 1-64 letters, digits, '-' or '_'";
  auto at = parse_host_port(opts.listen);
  if (!at)
    return "--cluster.listen must be HOST:PORT, e.g. 127.0.0.1:7400";
  if (!private_or_loopback(at->host))
    return "--cluster.listen must be a loopback or private address (not "
           + at->host + "): the cluster port is never open to everyone";
  if (opts.lease_ttl.count() < 2 || opts.lease_ttl.count() > 60)
    return "--cluster.lease-ttl-s must be 2-60";
  if (opts.fence_margin.count() < 100
      || opts.fence_margin * 2 >= opts.lease_ttl)
    return "--cluster.fence-margin-ms must be at least 100 and under half "
           "the lease TTL";
  auto tls = int(!opts.tls_cert.empty()) + int(!opts.tls_key.empty())
             + int(!opts.tls_ca.empty());
  if (tls != 0 && tls != 3)
    return "--cluster.tls-cert, --cluster.tls-key and --cluster.tls-ca go "
           "together (all three or none)";
  return {};
}

} // namespace parley::cluster
