#include "runtime/core/placement.hpp"

#include <string>

#include "runtime/core/errors.hpp"
#include "runtime/core/mix.hpp"

namespace parley {

uint64_t placement_hash(placement_key key) {
  return mix::fmix(key.id + uint64_t{key.kind} * mix::golden_gamma);
}

uint16_t slot_of(placement_key key) {
  return static_cast<uint16_t>(placement_hash(key) >> 48);
}

uint32_t partition_of_slot(uint32_t slot, uint32_t partitions) {
  return static_cast<uint32_t>((uint64_t{slot} * partitions) >> 16);
}

uint32_t partition_of(placement_key key, uint32_t partitions) {
  return partition_of_slot(slot_of(key), partitions);
}

slot_span slot_range(uint32_t p, uint32_t partitions) {
  if (partitions == 0 || p >= partitions)
    return {};
  // The least s with s * P >= q * 2^16: ceil(q * 2^16 / P).
  auto first_of = [&](uint64_t q) {
    return static_cast<uint32_t>((q * slot_count + partitions - 1)
                                 / partitions);
  };
  return {first_of(p), first_of(uint64_t{p} + 1)};
}

partition_map partition_map::single_node(uint32_t partitions, node_id self) {
  partition_map m;
  m.map_epoch = 1;
  m.owners.assign(partitions, self);
  return m;
}

caf::error partition_map::validate(uint32_t partitions) const {
  if (partitions == 0 || partitions > max_partitions)
    return caf::make_error(errc::bad_request,
                           "partitions must be 1-"
                             + std::to_string(max_partitions));
  if (owners.size() != partitions)
    return caf::make_error(errc::bad_request,
                           "partition map has " + std::to_string(owners.size())
                             + " entries for " + std::to_string(partitions)
                             + " partitions");
  if (map_epoch == 0)
    return caf::make_error(errc::bad_request, "partition map epoch 0");
  // An owner of no_node is valid: a partition between a move's fence and
  // its switch (runtime/partition_move_driver.hpp), served by nobody.
  return {};
}

route placement::route_of(placement_key key) const {
  route r;
  r.partition = partition_of(key, map.partitions());
  r.owner = map.owner(r.partition);
  r.map_epoch = map.map_epoch;
  r.local = r.owner != no_node && r.owner == self;
  return r;
}

caf::error placement::replace(partition_map next) {
  if (auto err = next.validate(map.partitions()))
    return err;
  if (next.map_epoch <= map.map_epoch)
    return caf::make_error(errc::conflict,
                           "partition map epoch "
                             + std::to_string(next.map_epoch)
                             + " is not above the current "
                             + std::to_string(map.map_epoch));
  map = std::move(next);
  return {};
}

} // namespace parley
