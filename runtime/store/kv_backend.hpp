#pragma once

// The key-value interface under Parley's store actors. Production uses
// LevelDB (leveldb_backend); simulation and unit tests use memory_backend,
// which adds fault injection, as LevelDB's memenv does for its own tests.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"

namespace parley {

/// Contract: `write` applies a batch atomically (all or nothing). With
/// `sync`, it returns success only once the batch is durable. Reads see
/// every write that returned before they started. Implementations are safe
/// for one writer thread plus concurrent readers.
class kv_backend {
public:
  /// Called for each key in order; return false to stop the scan.
  using visitor = std::function<bool(std::string_view key,
                                     std::string_view value)>;

  virtual ~kv_backend();

  /// Applies `batch` atomically. Returns `errc::storage_failed` if nothing
  /// was applied.
  virtual caf::error write(const write_batch& batch, bool sync) = 0;

  /// Reads one key: nullopt if absent.
  virtual caf::expected<std::optional<std::string>>
  get(std::string_view key) = 0;

  /// Visits the keys in [from, to) in ascending order (`to` empty: no upper
  /// bound).
  virtual caf::error scan(std::string_view from, std::string_view to,
                          const visitor& f) = 0;

  /// Returns the greatest key in [from, to) with its value, if any.
  virtual caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) = 0;

  /// The backend's own statistic `name` as text (LevelDB: its properties,
  /// e.g. "leveldb.stats"; see leveldb_backend), or empty if it has none.
  /// For operators (the admin port's status); safe from any thread.
  virtual std::string property(const std::string& name) {
    (void) name;
    return {};
  }
};

} // namespace parley
