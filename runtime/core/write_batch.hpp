#pragma once

// What one storage write applies atomically: a list of puts, deletes and
// never-backwards cursor writes. Built by the store's encoders, carried to
// the store writer in a message (its inspect is the wire format between
// nodes: append only).

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace parley {

/// One put or delete of a write batch. A `max_u64` op stores the larger of
/// its value and the one on disk (both 8-byte big-endian): cursors that
/// must never move backwards. A versioned put (non-empty `version_key`)
/// puts `value` and `version` (8-byte big-endian) under `version_key` only
/// if the version stored there (absent: 0) is below `version`: projections
/// fed by at-least-once events, where a stale or repeated event must not
/// overwrite a newer one. Both keys must be in one partition. The store
/// writer resolves both kinds.
struct kv_op {
  bool erase = false;
  std::string key;
  std::string value;
  bool max_u64 = false;
  std::string version_key;
  uint64_t version = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_op& x) {
  return f(caf::meta::type_name("kv_op"), x.erase, x.key, x.value, x.max_u64,
           x.version_key, x.version);
}

/// Operations applied atomically by one storage write.
struct write_batch {
  std::vector<kv_op> ops;

  void put(std::string key, std::string value) {
    ops.push_back(
      kv_op{false, std::move(key), std::move(value), false, {}, 0});
  }
  void erase(std::string key) {
    ops.push_back(kv_op{true, std::move(key), {}, false, {}, 0});
  }
  void max_u64(std::string key, std::string big_endian_value) {
    ops.push_back(kv_op{false, std::move(key), std::move(big_endian_value),
                        true, {}, 0});
  }
  void put_if_newer(std::string key, std::string value,
                    std::string version_key, uint64_t version) {
    ops.push_back(kv_op{false, std::move(key), std::move(value), false,
                        std::move(version_key), version});
  }
  bool empty() const {
    return ops.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_batch& x) {
  return f(caf::meta::type_name("write_batch"), x.ops);
}

} // namespace parley
