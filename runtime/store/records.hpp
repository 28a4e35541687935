#pragma once

// Reading one protobuf record of a table: absent is not an error.

#include <optional>
#include <string>

#include <caf/expected.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// The record at `key`, nullopt if there is none; storage_corrupt (naming
/// the table tag) if it does not parse.
template <class Record>
caf::expected<std::optional<Record>> read_record(kv_backend& kv,
                                                 const std::string& key) {
  auto bytes = kv.get(key);
  if (!bytes)
    return bytes.error();
  if (!*bytes)
    return std::optional<Record>{};
  Record rec;
  if (!rec.ParseFromString(**bytes))
    return caf::make_error(errc::storage_corrupt,
                           "bad record in table " + key.substr(0, 1));
  return std::optional<Record>{std::move(rec)};
}

} // namespace parley::store
