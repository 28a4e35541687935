// The cluster commands' pure pieces (runtime/admin/cluster_plan.hpp):
// owned partitions as ranges in `status`, and a drain's moves.

#include <doctest/doctest.h>

#include "runtime/admin/cluster_plan.hpp"

using namespace parley::admin;

TEST_CASE("partition ranges join runs of consecutive partitions") {
  CHECK(partition_ranges({}) == "");
  CHECK(partition_ranges({7}) == "7");
  CHECK(partition_ranges({0, 1, 2, 3, 8}) == "0-3,8");
  CHECK(partition_ranges({0, 2, 4}) == "0,2,4");
  CHECK(partition_ranges({1, 2, 5, 6, 7, 9}) == "1-2,5-7,9");
  CHECK(partition_ranges({65534, 65535}) == "65534-65535");
}

TEST_CASE("a drain sends the partitions round robin to the targets") {
  using plan = std::vector<std::pair<uint32_t, uint64_t>>;
  CHECK(drain_plan({2, 5, 8}, {1, 2}) == plan{{2, 1}, {5, 2}, {8, 1}});
  CHECK(drain_plan({4}, {3, 1}) == plan{{4, 3}});
  CHECK(drain_plan({}, {1}).empty());
  CHECK(drain_plan({1, 2}, {}).empty());
}
