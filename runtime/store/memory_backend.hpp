#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "runtime/store/kv_backend.hpp"

namespace parley {

/// In-memory kv_backend for simulation and tests. Everything written stays
/// (a process crash loses nothing, as with LevelDB), so a restarted actor
/// system can reopen the same "disk". Fault injection: `fail_write`, when
/// set, is asked before each write; returning true fails that write with
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

  /// Number of writes applied (successful).
  uint64_t writes() const;

  /// Number of writes refused by fault injection.
  uint64_t failed_writes() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::string, std::less<>> data_;
  uint64_t writes_ = 0;
  uint64_t failed_writes_ = 0;
};

} // namespace parley
