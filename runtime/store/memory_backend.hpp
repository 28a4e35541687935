#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/store/kv_backend.hpp"

namespace parley {

/// In-memory kv_backend for simulation and tests. It honours `sync` as
/// LevelDB on a real disk does: everything written is visible at once and
/// survives a process crash (the "disk" outlives the actor system, so a
/// restarted one reopens it), but only what a synced write covered survives
/// a power loss: `lose_unsynced` throws away every write after the last
/// synced one (a synced write makes the unsynced ones before it durable
/// too, as LevelDB's log does). Fault injection: `fail_write`, when set, is
/// asked before each write; returning true fails that write with
/// `errc::storage_failed` before anything is applied.
class memory_backend : public kv_backend {
public:
  std::function<bool(const write_batch&)> fail_write;

  caf::error write(const write_batch& batch, bool sync) override;

  caf::expected<std::optional<std::string>> get(std::string_view key) override;

  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override;

  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override;

  /// A power loss: the data goes back to what the last synced write left.
  /// Returns the number of unsynced writes lost.
  uint64_t lose_unsynced();

  /// Number of writes applied (successful).
  uint64_t writes() const;

  /// Number of writes refused by fault injection.
  uint64_t failed_writes() const;

private:
  mutable std::mutex mtx_;
  using map = std::map<std::string, std::string, std::less<>>;
  static void apply(map& m, const write_batch& batch);
  map data_;    ///< what readers see
  map durable_; ///< what a power loss leaves (as of the last synced write)
  std::vector<write_batch> unsynced_; ///< applied to data_, not durable_
  uint64_t writes_ = 0;
  uint64_t failed_writes_ = 0;
};

} // namespace parley
