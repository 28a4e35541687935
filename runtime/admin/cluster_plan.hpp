#pragma once

// Pure pieces of the cluster commands (handlers_cluster.cpp): partitions
// written as ranges for a person, and the moves of a drain. No CAF.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace parley::admin {

/// Ascending partitions as ranges: {0,1,2,3,8} -> "0-3,8"; {} -> "".
inline std::string partition_ranges(const std::vector<uint32_t>& ps) {
  std::string out;
  for (size_t i = 0; i < ps.size();) {
    size_t j = i;
    while (j + 1 < ps.size() && ps[j + 1] == ps[j] + 1)
      ++j;
    out += (out.empty() ? "" : ",") + std::to_string(ps[i]);
    if (j > i)
      out += "-" + std::to_string(ps[j]);
    i = j + 1;
  }
  return out;
}

/// The moves of a drain: the drained node's partitions `owned`, in order,
/// each to the next of `targets` round robin (partition, node) pairs.
/// Empty if `targets` is.
inline std::vector<std::pair<uint32_t, uint64_t>>
drain_plan(const std::vector<uint32_t>& owned,
           const std::vector<uint64_t>& targets) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  if (targets.empty())
    return out;
  for (size_t i = 0; i < owned.size(); ++i)
    out.emplace_back(owned[i], targets[i % targets.size()]);
  return out;
}

} // namespace parley::admin
