#pragma once

// What one storage write applies atomically: a list of puts, deletes and
// never-backwards cursor writes. Built by the store's encoders, carried to
// the store writer in a message (its inspect is the wire format between
// nodes: append only).

#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace parley {

/// One put or delete of a write batch. A `max_u64` op stores the larger of
/// its value and the one on disk (both 8-byte big-endian): cursors that
/// must never move backwards. The store writer resolves it.
struct kv_op {
  bool erase = false;
  std::string key;
  std::string value;
  bool max_u64 = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_op& x) {
  return f(caf::meta::type_name("kv_op"), x.erase, x.key, x.value, x.max_u64);
}

/// Operations applied atomically by one storage write.
struct write_batch {
  std::vector<kv_op> ops;

  void put(std::string key, std::string value) {
    ops.push_back(kv_op{false, std::move(key), std::move(value), false});
  }
  void erase(std::string key) {
    ops.push_back(kv_op{true, std::move(key), {}});
  }
  void max_u64(std::string key, std::string big_endian_value) {
    ops.push_back(kv_op{false, std::move(key), std::move(big_endian_value),
                        true});
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
