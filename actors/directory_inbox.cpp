#include "actors/directory_inbox.hpp"

#include <string>

#include "actors/inbox.hpp"
#include "runtime/core/errors.hpp"

namespace parley::directory_inbox {

namespace {

caf::error not_here(const directory_state& st, uint32_t p) {
  auto& map = st.where.map;
  return caf::make_error(errc::unavailable,
                         "partition " + std::to_string(p)
                           + " is owned by node "
                           + std::to_string(map.owner(p)) + " (map epoch "
                           + std::to_string(map.map_epoch) + ")");
}

/// This node's inbox: the projection the conversations feed (an inbox
/// supervisor wherever a node runs one).
inbox_actor local_inbox(const directory_state& st) {
  return caf::actor_cast<inbox_actor>(st.deps.projection);
}

} // namespace

caf::result<uint64_t> rows(self_ptr self, inbox_rows& r) {
  auto& st = self->state;
  auto& map = st.where.map;
  auto n = map.partitions();
  if (r.partition >= n)
    return caf::make_error(errc::bad_request, "no such partition");
  for (auto& row : r.rows)
    if (partition_of(placement_key::user(row.user), n) != r.partition)
      return caf::make_error(errc::bad_request,
                             "user " + std::to_string(row.user)
                               + " is not on partition "
                               + std::to_string(r.partition));
  if (map.owner(r.partition) != st.where.self) {
    if (forward_to_owner(self, map.owner(r.partition)))
      return caf::delegated<uint64_t>{};
    return not_here(st, r.partition);
  }
  auto inbox = local_inbox(st);
  if (!inbox)
    return caf::make_error(errc::unavailable, "no inbox on this node");
  return self->delegate(inbox, caf::put_atom::value, std::move(r));
}

caf::result<std::vector<inbox_entry>> query(self_ptr self, inbox_query& q) {
  auto& st = self->state;
  auto r = st.where.route_of(placement_key::user(q.user));
  if (!r.local) {
    if (forward_to_owner(self, r.owner))
      return caf::delegated<std::vector<inbox_entry>>{};
    return not_here(st, r.partition);
  }
  auto inbox = local_inbox(st);
  if (!inbox)
    return caf::make_error(errc::unavailable, "no inbox on this node");
  return self->delegate(inbox, fetch_atom::value, std::move(q));
}

} // namespace parley::directory_inbox
