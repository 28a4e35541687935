// cluster_member's moves and its view of the cluster for the operator
// (runtime/cluster_member.hpp): starting a move or a plan of moves on the
// move thread (one at a time per driving node), where moves stand, and
// who is registered, connected and owning what.

#include <thread>

#include "runtime/cluster_member_detail.hpp"
#include "runtime/node.hpp"

namespace parley {

namespace {

/// Resets st.moves[step.partition] for a move about to run. st.mtx held.
move_status& begin_move(cluster_member::state& st,
                        const cluster_member::move_step& step) {
  auto& m = st.moves[step.partition];
  m = move_status{};
  m.partition = step.partition;
  m.to = step.to;
  m.from = st.map.owner(step.partition);
  m.started_ms = system_clock_ms();
  return m;
}

} // namespace

std::pair<unsigned, std::string> cluster_member::start_move(uint32_t p,
                                                           node_id to) {
  return start_moves({{p, to}}, nullptr);
}

std::pair<unsigned, std::string>
cluster_member::start_moves(std::vector<move_step> plan, move_ended ended) {
  auto& st = *st_;
  std::lock_guard<std::mutex> guard{st.mtx};
  if (st.stopping)
    return {503, "the node is stopping"};
  if (plan.empty())
    return {400, "nothing to move"};
  for (auto& step : plan) {
    if (step.partition >= st.map.partitions())
      return {400, "no partition " + std::to_string(step.partition)
                     + " (the map has " + std::to_string(st.map.partitions())
                     + ")"};
    if (step.to != st.opts.node && !st.connected.count(step.to))
      return {404, "node " + std::to_string(step.to)
                     + " is not connected to this one (not registered, or "
                       "unreachable)"};
  }
  if (st.moving)
    return {409, "a move driven by this node is under way; wait for it "
                 "(parleyctl jobs)"};
  if (st.move_thread.joinable())
    st.move_thread.join(); // the last one, finished
  st.moving = true;
  auto first = begin_move(st, plan.front()).json();
  st.move_thread = std::thread{[sp = st_, plan = std::move(plan),
                                ended = std::move(ended)] {
    for (size_t i = 0; i < plan.size(); ++i) {
      if (i > 0) {
        std::lock_guard<std::mutex> g{sp->mtx};
        begin_move(*sp, plan[i]);
      }
      run_move(sp, plan[i].partition, plan[i].to);
      move_status last;
      {
        std::lock_guard<std::mutex> g{sp->mtx};
        last = sp->moves[plan[i].partition];
      }
      if (ended)
        ended(i, last);
      if (last.phase != "done")
        break;
    }
    std::lock_guard<std::mutex> g{sp->mtx};
    sp->moving = false;
  }};
  return {202, first};
}

std::optional<move_status> cluster_member::move_of(uint32_t p) const {
  auto& st = *st_;
  std::lock_guard<std::mutex> guard{st.mtx};
  auto i = st.moves.find(p);
  if (i == st.moves.end())
    return std::nullopt;
  return i->second;
}

std::string cluster_member::moves_json() const {
  auto& st = *st_;
  std::lock_guard<std::mutex> guard{st.mtx};
  std::string out = "[";
  for (auto& [p, m] : st.moves)
    out += (out.size() > 1 ? "," : "") + m.json();
  return out + "]";
}

cluster_member::view cluster_member::snapshot() const {
  auto& st = *st_;
  std::lock_guard<std::mutex> guard{st.mtx};
  view v;
  v.self = st.opts.node;
  v.map = st.map;
  v.etcd_up = st.etcd_up;
  v.lease_live = st.lease_live;
  auto address = [](const node_registration& r) {
    return r.at.host + ":" + std::to_string(r.at.port);
  };
  v.registered[st.opts.node] = address(st.self);
  for (auto& [id, r] : st.wanted)
    v.registered[id] = address(r);
  for (auto& [id, _] : st.connected)
    v.connected.insert(id);
  return v;
}

} // namespace parley
