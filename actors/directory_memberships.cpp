#include "actors/directory_memberships.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/membership_store.hpp"

namespace parley::directory_memberships {

caf::result<uint64_t> apply(self_ptr self, membership_event& ev) {
  auto& st = self->state;
  auto key = placement_key::user(ev.user);
  auto r = st.where.route_of(key);
  if (!r.local) {
    if (forward_to_owner(self, r.owner)) // to the owner's directory
      return caf::delegated<uint64_t>{};
    return caf::make_error(errc::unavailable,
                           "user " + std::to_string(ev.user)
                             + " is on partition "
                             + std::to_string(r.partition) + " owned by node "
                             + std::to_string(r.owner) + " (map epoch "
                             + std::to_string(r.map_epoch) + ")");
  }
  if (ev.version == 0)
    return caf::make_error(errc::bad_request,
                           "a membership event needs its version");
  write_batch batch;
  store::add_member_projection(batch, ev);
  auto rp = self->make_response_promise<uint64_t>();
  auto epoch = st.membership_epoch;
  self
    ->request(st.deps.writer, timeouts::commit, commit_atom::value,
              writer_ids::memberships(ev.user), epoch, std::move(batch))
    .then([rp, v = ev.version](uint64_t) mutable { rp.deliver(v); },
          [self, rp, epoch](caf::error& err) mutable {
            auto& cur = self->state.membership_epoch;
            cur = std::max(cur, next_epoch(err, epoch));
            rp.deliver(std::move(err));
          });
  return rp;
}

void activate_taken(self_ptr self, const partition_map& before) {
  auto& st = self->state;
  const auto& now = st.where.map;
  auto me = st.where.self;
  std::set<uint32_t> todo;
  todo.swap(st.unscanned);
  for (uint32_t p = 0; p < now.partitions(); ++p)
    if (now.owner(p) == me && before.owner(p) != me)
      todo.insert(p);
  if (!st.deps.reader)
    return; // a directory without a store (tests): nothing to scan
  auto parts = now.partitions();
  for (auto p : todo) {
    if (now.owner(p) != me)
      continue; // given up again meanwhile
    self
      ->request(st.deps.reader, timeouts::scan, outbox_atom::value, p, parts)
      .then(
        [self, p](std::vector<uint64_t>& convs) {
          if (!convs.empty())
            spdlog::info("taken partition relay partition={} "
                         "conversations={}",
                         p, convs.size());
          for (auto conv : convs) // spawned if still owned here
            self->send(self, caf::spawn_atom::value, conversation_id{conv});
        },
        [self, p, parts](caf::error& err) {
          spdlog::warn("taken partition scan failed partition={} "
                       "error=\"{}\" (again with the next map)",
                       p, to_string(err));
          auto& st = self->state;
          if (st.where.map.partitions() == parts
              && st.where.map.owner(p) == st.where.self)
            st.unscanned.insert(p);
        });
  }
}

} // namespace parley::directory_memberships
