#include "two_node_hop.hpp"

#include <chrono>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

namespace parley::sim {

namespace {

using land_atom = caf::atom_constant<caf::atom("hopland")>;

} // namespace

// -- port -------------------------------------------------------------------------

hop_port::hop_port(caf::actor_config& cfg, hop_net* net, node_id s, node_id f,
                   caf::strong_actor_ptr t)
  : caf::event_based_actor(cfg),
    side(s),
    far(f),
    target(std::move(t)),
    net_(net) {
}

void hop_port::enqueue(caf::mailbox_element_ptr x, caf::execution_unit*) {
  net_->transmit(this, std::move(x));
}

caf::behavior hop_port::make_behavior() {
  return {}; // never runs: spawned lazily, and nothing reaches its mailbox
}

// -- link -------------------------------------------------------------------------

hop_net::hop_net(caf::actor_system& sys, std::function<double()> uniform)
  : sys_(sys), uniform_(std::move(uniform)) {
  timer_ = sys.spawn<caf::hidden>([this](caf::event_based_actor*) {
    return caf::behavior{
      [this](land_atom, node_id from, node_id to) {
        land(from, to);
      },
    };
  });
}

hop_net::~hop_net() {
  clear();
}

void hop_net::clear() {
  queues_.clear();
  ports_.clear();
  dir_ports_.clear();
  directories_.clear();
  if (timer_) {
    caf::anon_send_exit(timer_, caf::exit_reason::kill);
    timer_ = nullptr;
  }
}

caf::actor hop_net::directory_port(node_id side, node_id far) {
  auto& p = dir_ports_[{side, far}];
  if (!p)
    p = caf::actor_cast<caf::strong_actor_ptr>(
      sys_.spawn<hop_port, caf::lazy_init + caf::hidden>(this, side, far,
                                                          nullptr));
  return caf::actor_cast<caf::actor>(p);
}

void hop_net::set_directory(node_id n, caf::strong_actor_ptr dir) {
  directories_[n] = std::move(dir);
  ++epoch_; // connections to and from n reset
}

caf::strong_actor_ptr hop_net::resolve(const hop_port& p) const {
  if (p.target)
    return p.target;
  auto i = directories_.find(p.far);
  return i == directories_.end() ? nullptr : i->second;
}

caf::strong_actor_ptr hop_net::port_for(node_id side,
                                        caf::strong_actor_ptr real) {
  if (!real)
    return nullptr;
  // A port of the other node standing for an actor of `side`: the actor
  // itself (a message that crossed twice comes home).
  auto* raw = caf::actor_cast<caf::abstract_actor*>(real);
  if (auto* p = dynamic_cast<hop_port*>(raw); p && p->far == side && p->target)
    return p->target;
  auto& port = ports_[{side, real->id()}];
  if (!port)
    port = caf::actor_cast<caf::strong_actor_ptr>(
      sys_.spawn<hop_port, caf::lazy_init + caf::hidden>(
        this, side, side == 1 ? node_id{2} : node_id{1}, real));
  return port;
}

void hop_net::transmit(hop_port* via, caf::mailbox_element_ptr x) {
  ++stats.sent;
  packet pk;
  pk.via = caf::actor_cast<caf::strong_actor_ptr>(via);
  pk.sender = x->sender;
  pk.mid = x->mid;
  pk.from = via->side;
  pk.to = via->far;
  pk.epoch = epoch_;
  auto msg = x->move_content_to_message();
  for (size_t i = 0; i < msg.size(); ++i)
    pk.shape.push_back(msg.type(i));
  caf::binary_serializer sink{sys_, pk.bytes};
  if (auto err = sink(msg)) {
    violations.push_back("cannot serialize " + caf::to_string(msg) + ": "
                         + caf::to_string(err));
    return;
  }
  stats.bytes += pk.bytes.size();
  auto key = std::make_pair(pk.from, pk.to);
  queues_[key].push_back(std::move(pk));
  // Each landing takes the oldest packet of its direction's queue, so
  // whatever order the timers fire in, the link stays FIFO as the
  // middleman's one connection between two nodes is (and so per sender
  // and receiver).
  auto delay = std::chrono::milliseconds(
    static_cast<int64_t>(uniform_() * static_cast<double>(max_delay_ms)));
  auto& clock = sys_.clock();
  clock.schedule_message(clock.now() + delay,
                         caf::actor_cast<caf::strong_actor_ptr>(timer_),
                         caf::make_mailbox_element(
                           nullptr, caf::make_message_id(), {},
                           land_atom::value, key.first, key.second));
}

void hop_net::land(node_id from, node_id to) {
  auto q = queues_.find({from, to});
  if (q == queues_.end() || q->second.empty())
    return;
  packet pk;
  if (reorder) {
    pk = std::move(q->second.back());
    q->second.pop_back();
  } else {
    pk = std::move(q->second.front());
    q->second.pop_front();
  }
  if (q->second.empty())
    queues_.erase(q);
  trace = (trace ^ (pk.via->id() * 31 + from)) * 1099511628211ull;
  auto* via = dynamic_cast<hop_port*>(
    caf::actor_cast<caf::abstract_actor*>(pk.via));
  auto dest = resolve(*via);
  if (broken || pk.epoch != epoch_ || !dest) {
    ++stats.dropped;
    return;
  }
  caf::message msg;
  caf::binary_deserializer source{sys_, pk.bytes};
  if (auto err = source(msg)) {
    violations.push_back("cannot deserialize a message: "
                         + caf::to_string(err));
    return;
  }
  if (source.remaining() != 0) {
    violations.push_back("bytes left over after " + caf::to_string(msg));
    return;
  }
  bool same = msg.size() == pk.shape.size();
  for (size_t i = 0; same && i < msg.size(); ++i) {
    auto t = msg.type(i);
    same = t.first == pk.shape[i].first
           && (t.first != 0 || t.second == pk.shape[i].second);
  }
  if (!same) {
    std::string sent;
    for (auto& t : pk.shape)
      sent += std::string(sent.empty() ? "" : ", ")
              + (t.second ? t.second->name() : std::to_string(t.first));
    violations.push_back("a message of (" + sent + ") came back as "
                         + caf::to_string(msg)
                         + ": a type that cannot cross a node");
    return;
  }
  ++stats.delivered;
  auto as = port_for(pk.to, pk.sender);
  dest->enqueue(caf::make_mailbox_element(std::move(as), pk.mid, {},
                                          std::move(msg)),
                nullptr);
}

} // namespace parley::sim
