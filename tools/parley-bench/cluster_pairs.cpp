#include "cluster_pairs.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <stdexcept>

#include <unistd.h>

#include "bench_net.hpp"
#include "runtime/core/placement.hpp"

namespace parley::bench {

namespace {

struct cluster_view {
  std::vector<uint64_t> nodes;           ///< in --cluster-ports order
  std::map<uint64_t, uint16_t> port_of;  ///< node -> client port
  std::vector<uint64_t> owners;          ///< partition -> node
};

/// Each node's /healthz: its id and owned partitions, joined into a map.
cluster_view read_map(const ws_options& o) {
  cluster_view v;
  std::map<uint32_t, uint64_t> owner_of;
  for (auto port : o.cluster_ports) {
    auto body = http_get(o.host, port, "/healthz");
    auto node = json_value(body, "node");
    std::smatch m;
    if (node.empty()
        || !std::regex_search(body, m, std::regex("\"owned\":\\[([0-9,]*)\\]")))
      throw std::runtime_error("no cluster in /healthz of port "
                               + std::to_string(port) + ": " + body);
    auto id = std::stoull(node);
    v.nodes.push_back(id);
    v.port_of[id] = port;
    std::string list = m[1].str();
    for (size_t at = 0; at < list.size();) {
      auto end = list.find(',', at);
      if (end == std::string::npos)
        end = list.size();
      auto p = static_cast<uint32_t>(std::stoul(list.substr(at, end - at)));
      if (!owner_of.emplace(p, id).second)
        throw std::runtime_error("partition " + std::to_string(p)
                                 + " owned twice (a move under way?)");
      at = end + 1;
    }
  }
  for (uint32_t p = 0; p < owner_of.size(); ++p) {
    auto i = owner_of.find(p);
    if (i == owner_of.end())
      throw std::runtime_error("partition " + std::to_string(p)
                               + " owned by no node in --cluster-ports");
    v.owners.push_back(i->second);
  }
  return v;
}

struct user {
  std::string name;
  uint64_t id = 0;
};

} // namespace

std::vector<pair_plan> plan_cross_node_pairs(const ws_options& o) {
  auto v = read_map(o);
  auto n = v.nodes.size();
  if (n < 3)
    throw std::runtime_error("--cluster-ports needs at least three nodes");
  auto parts = static_cast<uint32_t>(v.owners.size());
  auto owner_user = [&](uint64_t id) {
    return v.owners[partition_of(placement_key::user(id), parts)];
  };
  auto owners = std::make_shared<const std::vector<uint64_t>>(v.owners);
  auto owner_conv = [owners, parts](uint64_t conv) {
    return (*owners)[partition_of(placement_key::conversation(conv), parts)];
  };
  auto run_id = std::to_string(::getpid()) + "c";
  std::map<uint64_t, std::vector<user>> pool; // unused users by owner
  std::map<uint64_t, std::set<uint64_t>> known; // ids signed up per node
  std::vector<pair_plan> plans;
  uint64_t signed_up = 0;
  for (int round = 0; plans.size() < o.pairs; ++round) {
    if (round == 40)
      throw std::runtime_error("no fit after 40 rounds of sign-ups");
    // A round: a batch of sign-ups through each node, then as many pairs
    // as the unused users allow.
    auto batch = std::max<uint64_t>(32, (o.pairs - plans.size()) * 3 / n * 2 + 8);
    for (auto node : v.nodes) {
      std::vector<std::string> names;
      for (uint64_t k = 0; k < batch; ++k)
        names.push_back("x" + run_id + "n" + std::to_string(signed_up++));
      auto ids = register_all(o.host, v.port_of[node], names);
      // A client connects (and logs in) through the node it signed up
      // on, and is kept only if that node owns its user id (its device
      // registry is there).
      for (size_t k = 0; k < ids.size(); ++k) {
        known[node].insert(ids[k]);
        if (owner_user(ids[k]) == node)
          pool[node].push_back({names[k], ids[k]});
      }
    }
    while (plans.size() < o.pairs) {
      auto i = plans.size();
      auto a = v.nodes[i % n], c = v.nodes[(i + 1) % n],
           b = v.nodes[(i + 2) % n];
      auto& senders = pool[a];
      auto& recipients = pool[c];
      // At b187285 parleyd's accounts actor answers from its own node's
      // store only (ids are counted per node: the same id names another
      // user on each node), so a group create on the sender's node checks
      // the recipient's id there: take a recipient whose id is also an
      // account on the sender's node. The messages still go by id through
      // the conversation's node to the recipient's registry and device.
      auto r = std::find_if(recipients.begin(), recipients.end(),
                            [&](const user& u) { return known[a].count(u.id); });
      if (senders.empty() || r == recipients.end())
        break; // more next round
      pair_plan p;
      p.sender_name = senders.back().name;
      p.recipient_name = r->name;
      p.recipient_id = r->id;
      p.sender_port = v.port_of[a];
      p.recipient_port = v.port_of[c];
      p.sender_node = a;
      p.conv_node = b;
      p.recipient_node = c;
      p.conv_fits = [owner_conv, b](uint64_t conv) {
        return owner_conv(conv) == b;
      };
      plans.push_back(p);
      senders.pop_back();
      recipients.erase(r);
    }
  }
  // Log each client in through the node it will connect to (the node it
  // signed up on: a login through another node does not find the account).
  std::map<uint16_t, std::vector<std::string*>> tokens_by_port;
  std::map<uint16_t, std::vector<std::string>> names_by_port;
  for (auto& p : plans) {
    names_by_port[p.sender_port].push_back(p.sender_name);
    tokens_by_port[p.sender_port].push_back(&p.sender_token);
    names_by_port[p.recipient_port].push_back(p.recipient_name);
    tokens_by_port[p.recipient_port].push_back(&p.recipient_token);
  }
  for (auto& [port, names] : names_by_port) {
    auto tokens = login_all(o.host, port, names);
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (tokens[k].empty())
        throw std::runtime_error("login failed for " + names[k]);
      *tokens_by_port[port][k] = tokens[k];
    }
  }
  std::printf("cluster: %zu nodes, %u partitions; %zu pairs with sender, "
              "conversation and recipient on three different nodes (%llu "
              "users signed up)\n",
              n, parts, plans.size(),
              static_cast<unsigned long long>(signed_up));
  return plans;
}

} // namespace parley::bench
