#include "runtime/store/layout.hpp"

#include <algorithm>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/keys.hpp"

namespace parley::store {

caf::error scan_table(kv_backend& kv, char tag, const kv_backend::visitor& f) {
  return scan_table(kv, tag, keys::table_start(0, tag), f);
}

caf::error scan_table(kv_backend& kv, char tag, std::string from,
                      const kv_backend::visitor& f) {
  const auto end = keys::table_start(slot_count, tag); // "Q": after every slot
  from = std::max(from, keys::table_start(0, tag));
  for (;;) {
    bool stopped = false;     // `f` asked to stop
    std::string next;         // where to seek after leaving the table
    auto err = kv.scan(from, end, [&](std::string_view k, std::string_view v) {
      auto slot = keys::slot_of_key(k);
      if (!slot || k.size() <= keys::tag_pos) {
        next = std::string(k) + '\0'; // a stray short key: step over it
        return false;
      }
      char t = k[keys::tag_pos];
      if (t == tag) {
        if (!f(k, v))
          stopped = true;
        return !stopped;
      }
      // Left the table: this slot's table is still ahead (t < tag), or the
      // next slot's is.
      next = keys::table_start(t < tag ? *slot : uint32_t{*slot} + 1, tag);
      return false;
    });
    if (err)
      return err;
    if (stopped || next.empty() || next >= end)
      return {};
    from = std::move(next);
  }
}

std::pair<std::string, std::string> partition_range(uint32_t p,
                                                    uint32_t partitions) {
  auto span = slot_range(p, partitions);
  auto bound = [](uint32_t slot) {
    if (slot >= slot_count)
      return std::string(1, static_cast<char>(keys::partitioned_tag + 1));
    std::string out(1, keys::partitioned_tag);
    out.push_back(static_cast<char>((slot >> 8) & 0xFF));
    out.push_back(static_cast<char>(slot & 0xFF));
    return out;
  };
  return {bound(span.first), bound(span.end)};
}

caf::error read_partition(kv_backend& kv, uint32_t p, uint32_t partitions,
                          const kv_backend::visitor& f) {
  if (partitions == 0 || partitions > max_partitions || p >= partitions)
    return caf::make_error(errc::bad_request,
                           "no partition " + std::to_string(p) + " of "
                             + std::to_string(partitions));
  auto [from, to] = partition_range(p, partitions);
  return kv.scan(from, to, f);
}

} // namespace parley::store
