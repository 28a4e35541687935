#include "runtime/store/partition_move.hpp"

#include <map>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/layout.hpp"

namespace parley::store {

namespace {

using records = std::map<std::string, std::string, std::less<>>;

caf::error check(uint32_t p, uint32_t partitions) {
  if (partitions == 0 || partitions > max_partitions || p >= partitions)
    return caf::make_error(errc::bad_request,
                           "no partition " + std::to_string(p) + " of "
                             + std::to_string(partitions));
  return {};
}

} // namespace

move_cursor start_pass(uint32_t p, uint32_t partitions) {
  return {p, partitions, partition_range(p, partitions).first, false};
}

caf::expected<move_read> read_chunk(kv_backend& from, const move_cursor& at,
                                    size_t max_keys) {
  if (auto err = check(at.partition, at.partitions))
    return err;
  move_read out;
  auto end = partition_range(at.partition, at.partitions).second;
  if (at.done || at.next >= end) {
    out.span_end = at.next;
    out.done = true;
    return out;
  }
  if (max_keys == 0)
    max_keys = 1;
  bool full = false;
  auto err = from.scan(at.next, end, [&](std::string_view k,
                                         std::string_view v) {
    out.records.put(std::string(k), std::string(v));
    if (out.records.ops.size() >= max_keys) {
      full = true;
      return false;
    }
    return true;
  });
  if (err)
    return err;
  // The span: [at.next, span_end). Past the last key read, the smallest
  // key after it is that key with a zero byte appended.
  out.span_end = end;
  if (full) {
    out.span_end = out.records.ops.back().key;
    out.span_end.push_back('\0');
  }
  out.done = !full || out.span_end >= end;
  return out;
}

caf::expected<move_chunk> plan_apply(kv_backend& to, const move_cursor& at,
                                     const move_read& r) {
  if (auto err = check(at.partition, at.partitions))
    return err;
  auto [first, end] = partition_range(at.partition, at.partitions);
  auto bad = [](const std::string& why) {
    return caf::make_error(errc::bad_request, "not a chunk of this pass: "
                                                + why);
  };
  move_chunk out;
  out.after = at;
  if (at.done || at.next >= end) {
    out.after.done = true;
    return out;
  }
  if (r.span_end <= at.next || r.span_end > end || at.next < first)
    return bad("span outside the pass");
  records old_side;
  for (auto& op : r.records.ops) {
    if (op.erase || op.max_u64 || !op.version_key.empty() || op.key < at.next
        || op.key >= r.span_end)
      return bad("a record outside its span");
    if (!old_side.emplace(op.key, op.value).second)
      return bad("a key twice");
  }
  out.read = old_side.size();
  records new_side;
  auto err = to.scan(at.next, r.span_end, [&](std::string_view k,
                                              std::string_view v) {
    new_side.emplace(std::string(k), std::string(v));
    return true;
  });
  if (err)
    return err;
  for (auto& [k, v] : new_side)
    if (old_side.find(k) == old_side.end()) {
      out.batch.erase(k);
      ++out.erases;
    }
  for (auto& [k, v] : old_side) {
    auto i = new_side.find(k);
    if (i == new_side.end() || i->second != v) {
      out.batch.put(k, v);
      ++out.puts;
    }
  }
  out.after.next = r.span_end;
  out.after.done = r.done || r.span_end >= end;
  return out;
}

caf::expected<move_chunk> mirror_chunk(kv_backend& from, kv_backend& to,
                                       const move_cursor& at,
                                       size_t max_keys) {
  auto r = read_chunk(from, at, max_keys);
  if (!r)
    return r.error();
  return plan_apply(to, at, *r);
}

caf::expected<bool> same_partition(kv_backend& a, kv_backend& b, uint32_t p,
                                   uint32_t partitions) {
  if (auto err = check(p, partitions))
    return err;
  records ra, rb;
  auto collect = [](records& r) {
    return [&r](std::string_view k, std::string_view v) {
      r.emplace(std::string(k), std::string(v));
      return true;
    };
  };
  if (auto err = read_partition(a, p, partitions, collect(ra)))
    return err;
  if (auto err = read_partition(b, p, partitions, collect(rb)))
    return err;
  return ra == rb;
}

} // namespace parley::store
