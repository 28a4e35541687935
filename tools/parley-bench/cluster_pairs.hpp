#pragma once

// parley-bench --mode ws --cluster-ports P1,P2,P3 (issue 22): 1:1 pairs
// against a cluster whose sender, conversation and recipient are all on
// different nodes. The map comes from each node's /healthz ("node",
// "owned"); users are signed up until the placement of each pair fits
// (runtime/core/placement.hpp, direct_conversation_id).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ws_mode.hpp"

namespace parley::bench {

/// One pair: where its two clients connect and what they own.
struct pair_plan {
  std::string sender_name, sender_token;
  std::string recipient_name, recipient_token;
  uint16_t sender_port = 0, recipient_port = 0;
  uint64_t recipient_id = 0;
  uint64_t sender_node = 0, conv_node = 0, recipient_node = 0;
  /// Whether a conversation id of the pair lands where it should.
  std::function<bool(uint64_t)> conv_fits;
};

/// Reads the map from the nodes at `o.cluster_ports` (at least three),
/// signs up users through every node, keeping those the node they signed
/// up on also owns (a login or a username resolves only on the node an
/// account signed up on), and pairs them: pair i has its sender on node
/// i, its recipient on node i+1 and its conversation (a group of two the
/// sender creates until `conv_fits`) on node i+2, in --cluster-ports
/// order. Each client logs in and connects through its own node. Throws
/// with a reason if it cannot.
std::vector<pair_plan> plan_cross_node_pairs(const ws_options& o);

} // namespace parley::bench
