#include "runtime/store/meta_store.hpp"

#include <string>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/keys.hpp"

namespace parley::store {

namespace {

/// The meta name of the partition count. DO NOT CHANGE: on disk.
constexpr std::string_view partitions_name = "partitions";

} // namespace

caf::expected<uint32_t> stored_partitions(kv_backend& kv) {
  auto rec = kv.get(keys::meta(partitions_name));
  if (!rec)
    return std::move(rec.error());
  if (!*rec)
    return uint32_t{0};
  auto n = keys::read_u64(**rec, 0);
  if (!n || (*rec)->size() != 8 || *n == 0 || *n > max_partitions)
    return caf::make_error(errc::storage_corrupt,
                           "bad partition count record in the store");
  return static_cast<uint32_t>(*n);
}

caf::expected<uint32_t> settle_partitions(kv_backend& kv, uint32_t configured,
                                          uint32_t fallback) {
  auto kept = stored_partitions(kv);
  if (!kept)
    return kept;
  if (*kept != 0) {
    if (configured != 0 && configured != *kept)
      return caf::make_error(
        errc::conflict,
        "the store was created with " + std::to_string(*kept)
          + " partitions and cannot change to " + std::to_string(configured)
          + " (data is placed by partition; drop --partitions or give "
          + std::to_string(*kept) + ")");
    return *kept;
  }
  auto n = configured != 0 ? configured : fallback;
  if (n == 0 || n > max_partitions)
    return caf::make_error(errc::bad_request,
                           "partitions must be 1-"
                             + std::to_string(max_partitions));
  write_batch b;
  std::string value;
  keys::append_u64(value, n);
  b.put(keys::meta(partitions_name), std::move(value));
  if (auto err = kv.write(b, true))
    return err;
  return n;
}

} // namespace parley::store
