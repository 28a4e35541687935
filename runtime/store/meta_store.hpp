#pragma once

// Meta records: what a node fixes in its store at the first start and must
// never change afterwards (keys.hpp, table 'z'). Synchronous reads and
// writes for bootstrap code, before any actor runs; not for actors.

#include <cstdint>

#include <caf/expected.hpp>

#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// The deployment's partition count kept in `kv`; 0 if none is kept yet.
/// Error: storage_corrupt (a record that is not 8 bytes or holds 0),
/// or the backend's read error.
caf::expected<uint32_t> stored_partitions(kv_backend& kv);

/// Settles the partition count at startup. `configured` is the operator's
/// choice (0: none given). A store that keeps a count answers it, unless
/// `configured` differs: then errc::conflict, naming both numbers. A store
/// with none keeps `configured` (or `fallback` if it is 0) with a synced
/// write and answers it. Error: bad_request (a count outside
/// 1-max_partitions), or the backend's error.
caf::expected<uint32_t> settle_partitions(kv_backend& kv, uint32_t configured,
                                          uint32_t fallback);

} // namespace parley::store
