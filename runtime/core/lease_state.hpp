#pragma once

// The node's lease as the store writer sees it (issue 22, ownership with
// fencing): whether the node may write for its partitions, and the
// generation of that report. The lease keeper (runtime/cluster/
// lease_keeper.hpp) reports each may_write transition; whoever forwards it
// to the store writer numbers the reports with a generation that only
// grows, so a report delayed behind a newer one is ignored.
//
// The generation is neither the partition map's epoch (map_epoch, ordered
// by the control plane across nodes) nor a store writer's fence epoch (per
// writer, runtime/core/writer_ids.hpp), nor the epoch clients see in Sync
// and Welcome: it orders one node's lease reports to its own writer only.
// The order of fields in `inspect` is the BASP wire format: append only.

#include <cstdint>

#include <caf/meta/type_name.hpp>

namespace parley {

/// (put_atom, lease_state) to the store writer: `live` false fences the
/// node's owned partitions, true lifts that fence.
struct lease_state {
  bool live = true;
  uint64_t generation = 0; ///< only grows; an older one is ignored
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_state& x) {
  return f(caf::meta::type_name("lease_state"), x.live, x.generation);
}

} // namespace parley
