#pragma once

// Reads over the slot-prefixed key layout (keys.hpp): a table across every
// slot, and a partition's records as one range of keys. Synchronous, for
// the store's readers and bootstrap code.

#include <cstdint>
#include <string>
#include <utility>

#include <caf/error.hpp>

#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// Visits every key of table `tag` (keys.hpp), slot by slot, in key order
/// within a slot (so one owner's records come together). Seeks 'P' slot tag
/// and, whenever the scan leaves the table, jumps to the next slot that
/// holds keys: the cost grows with the occupied slots, not with 65,536.
/// `f` returns false to stop. Error: the backend's.
caf::error scan_table(kv_backend& kv, char tag, const kv_backend::visitor& f);

/// The same from key `from` on (a key of the table to resume at, or any
/// key before it).
caf::error scan_table(kv_backend& kv, char tag, std::string from,
                      const kv_backend::visitor& f);

/// The keys of partition `p` of `partitions`: [first, second). Every
/// partitioned key (keys.hpp) of an owner in that partition lies in it,
/// and no other key does (meta keys lie outside every partition).
std::pair<std::string, std::string> partition_range(uint32_t p,
                                                    uint32_t partitions);

/// Visits every record of partition `p` of `partitions`, in key order (for
/// streaming a partition to another node). `f` returns false to stop.
/// Errors: bad_request (p or partitions out of range), the backend's.
caf::error read_partition(kv_backend& kv, uint32_t p, uint32_t partitions,
                          const kv_backend::visitor& f);

} // namespace parley::store
