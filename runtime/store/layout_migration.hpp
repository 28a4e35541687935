#pragma once

// The key layout's version and its migration (keys.hpp, meta 'z' "layout").
// A node settles the layout at startup, before any actor runs: a fresh
// store gets the current version; a store of layout 1 (keys without the
// 'P' slot prefix) or 2 (whole account records under the username, 'u') is
// migrated in place, one step after the other (1 -> 2 -> 3); a newer one
// is refused.
// Synchronous, for bootstrap code (node::start, parleyd's offline tools).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// How a migration runs.
struct migration_options {
  /// Old keys moved (or accounts given their 'a' record) per synced batch
  /// (each batch moves them atomically).
  size_t chunk_keys = 1000;
  /// A progress line every this many keys.
  uint64_t progress_every = 100000;
  /// Where start, progress and end lines go (nowhere if empty).
  std::function<void(const std::string&)> log;
};

/// What settle_layout found and did.
struct layout_report {
  uint64_t found = 0;    ///< the store's version (0: a fresh store)
  uint64_t moved = 0;    ///< keys moved from layout 1 to 2
  uint64_t accounts = 0; ///< accounts given their 'a' record (2 to 3)
  uint64_t chunks = 0;   ///< synced batches written by both steps
};

/// The layout version kept in `kv`; nullopt if none is. Error:
/// storage_corrupt (a record that is not 8 bytes or holds 0), the backend's.
caf::expected<std::optional<uint64_t>> stored_layout(kv_backend& kv);

/// Settles the key layout of `kv` at startup. A kept version equal to
/// keys::layout_version: nothing to do. No version and no data: a fresh
/// store, the current version is written. No version but data (or version
/// 1): migrate_v1_to_v2; then (version 2 too) migrate_v2_to_v3; then the
/// version is written (last, synced). A
/// crash at any point leaves every record in exactly one layout, and the
/// next start finishes the job. Errors: conflict (a version newer than this
/// binary supports, saying which), storage_corrupt (a key whose owner
/// cannot be read: nothing is dropped), the backend's.
caf::expected<layout_report> settle_layout(kv_backend& kv,
                                           const migration_options& opts = {});

/// Moves every layout-1 key of `kv` to its layout-2 key (the owner's slot
/// prefixed to the same bytes), in chunks of `opts.chunk_keys`: each chunk
/// writes the new keys and deletes the old ones in one synced batch.
/// Idempotent: keys already moved are not seen again. Does not write the
/// version. Returns the report (found = 1). Errors: storage_corrupt (a key
/// of no known table, or one too short for its table: the message names
/// the table and shows the key), the backend's (chunks already written
/// stay written).
caf::expected<layout_report> migrate_v1_to_v2(kv_backend& kv,
                                              const migration_options& opts);

/// The layout-2 key of a layout-1 key. Error: storage_corrupt, as above.
caf::expected<std::string> v2_key_of_v1(std::string_view old_key);

/// Gives every account its layout-3 records (layout_migration_v3.cpp):
/// for each username entry 'u' (layout 2: the whole AccountRecord, in the
/// username's partition) writes the record under 'a' user (the id's
/// partition) and slims 'u' to the user id, `opts.chunk_keys` accounts per
/// synced batch (both writes of an account in one batch). Idempotent: a
/// slim entry whose 'a' exists is skipped. Does not write the version.
/// Returns the report (found = 2, accounts). Errors: storage_corrupt (a 'u'
/// value that is not an account record: the message names the key; the
/// accounts before it stay migrated, nothing is dropped), the backend's.
caf::expected<layout_report> migrate_v2_to_v3(kv_backend& kv,
                                              const migration_options& opts);

/// Up to 40 bytes of `key` in hex, for messages.
std::string key_hex(std::string_view key);

} // namespace parley::store
