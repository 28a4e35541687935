#include "runtime/partition_move_driver.hpp"

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "runtime/cluster_member_detail.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/node.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/partition_move.hpp"

namespace parley {

namespace {

using namespace std::chrono_literals;
using state = cluster_member::state;

constexpr auto call_timeout = 10s;       ///< one chunk or one question
constexpr auto retry_pause = 500ms;
constexpr auto give_up_after = std::chrono::minutes(10); ///< per phase

caf::behavior move_agent(caf::event_based_actor* self,
                         std::shared_ptr<kv_backend> kv, caf::actor keeper,
                         caf::actor writer, node_id me) {
  return {
    [kv](load_atom, uint32_t p, uint32_t partitions, const std::string& next,
         uint64_t max_keys)
      -> caf::result<write_batch, std::string, bool> {
      store::move_cursor at{p, partitions, next, false};
      auto r = store::read_chunk(*kv, at, max_keys);
      if (!r)
        return r.error();
      return {std::move(r->records), std::move(r->span_end), r->done};
    },
    [kv](commit_atom, uint32_t p, uint32_t partitions,
         const std::string& next, const std::string& span_end,
         write_batch& records) -> caf::result<uint64_t, uint64_t> {
      store::move_cursor at{p, partitions, next, false};
      store::move_read r{std::move(records), span_end, false};
      auto c = store::plan_apply(*kv, at, r);
      if (!c)
        return c.error();
      if (!c->batch.ops.empty())
        if (auto err = kv->write(c->batch, true))
          return err;
      return {c->puts, c->erases};
    },
    [kv](caf::get_atom, uint32_t p,
         uint32_t partitions) -> caf::result<uint64_t> {
      uint64_t n = 0;
      if (auto err = store::read_partition(*kv, p, partitions,
                                           [&n](std::string_view,
                                                std::string_view) {
                                             ++n;
                                             return true;
                                           }))
        return err;
      return n;
    },
    // The map epoch the node's store writer holds: the keeper's newest
    // map, handed to the writer (an equal epoch changes nothing there) so
    // that the answer comes only once the writer has fenced and written
    // everything it accepted before that map; the keeper's own answer
    // may come while its hand-out is still under way.
    [self, keeper, writer, me](caf::get_atom) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      self->request(keeper, 5s, caf::get_atom::value)
        .then(
          [self, rp, writer, me](partition_map& m) mutable {
            auto epoch = m.map_epoch;
            self->request(writer, 5s, caf::put_atom::value, me, std::move(m))
              .then([rp](uint64_t held) mutable { rp.deliver(held); },
                    [rp, epoch](caf::error& err) mutable {
                      if (is(err, errc::conflict)) // it holds a newer one
                        rp.deliver(epoch);
                      else
                        rp.deliver(std::move(err));
                    });
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

/// The driver of one move (see the header).
class driver {
public:
  driver(std::shared_ptr<state> sp, uint32_t p, node_id to)
    : sp_(std::move(sp)), st_(*sp_), self_(st_.sys), p_(p), to_(to) {
  }

  void run() {
    auto m0 = read_map(st_);
    if (!m0)
      return fail("cannot read the partition map from etcd");
    from_ = m0->map.owner(p_);
    parts_ = m0->map.partitions();
    update([&](move_status& m) { m.from = from_; });
    if (from_ == to_)
      return fail("partition already on node " + std::to_string(to_));
    if (from_ == no_node)
      return fail("partition owned by nobody: another move is switching it");
    count_keys();
    // Stream while the old owner serves; if it is away (dead, frozen,
    // cut off), fence first: it serves nothing meanwhile, and when it is
    // back it takes the fence before it writes again (a regained lease
    // re-reads the map); the tail pass then copies everything.
    switch (pass("streaming", true)) {
      case outcome::failed:
        return;
      case outcome::source_away:
        spdlog::warn("move partition={}: node={} is away; fencing first",
                     p_, from_);
        break;
      case outcome::done:
        break;
    }
    // Fence: nobody owns p at E+1, if the map is still the one read.
    auto fenced = m0->map;
    fenced.map_epoch += 1;
    fenced.owners[p_] = no_node;
    auto rev = swap(m0->mod_revision, fenced);
    if (!rev)
      return fail("the partition map changed during the move; nothing "
                  "switched, start it again");
    update([&](move_status& m) {
      m.phase = "fencing";
      m.fenced_ms = system_clock_ms();
      m.map_epoch = fenced.map_epoch;
    });
    spdlog::info("move partition={} fenced map_epoch={}: waiting for node={}",
                 p_, fenced.map_epoch, from_);
    if (!await_epoch(from_, fenced.map_epoch))
      return undo(*rev, fenced, "node " + std::to_string(from_)
                                  + " did not take the fence");
    if (pass("tail", false) != outcome::done)
      return undo(*rev, fenced, "the tail pass failed");
    auto moved = fenced;
    moved.map_epoch += 1;
    moved.owners[p_] = to_;
    update([&](move_status& m) { m.phase = "switching"; });
    if (!swap(*rev, moved))
      return fail("the partition map changed while the partition was "
                  "fenced; it stays fenced until an operator writes the "
                  "map (partition " + std::to_string(p_) + ")");
    update([&](move_status& m) { m.map_epoch = moved.map_epoch; });
    if (!await_epoch(to_, moved.map_epoch))
      return fail("node " + std::to_string(to_)
                  + " did not take the switched map (it will from etcd)");
    update([&](move_status& m) {
      m.phase = "done";
      m.switched_ms = system_clock_ms();
      m.waiting.clear();
      spdlog::info("move partition={} done from={} to={} keys={} "
                   "unavailable_ms={}",
                   p_, from_, to_, m.keys, m.window_ms());
    });
  }

private:
  template <class F>
  void update(F f) {
    std::lock_guard<std::mutex> guard{st_.mtx};
    f(st_.moves[p_]);
  }

  void fail(const std::string& why) {
    spdlog::error("move partition={} failed: {}", p_, why);
    update([&](move_status& m) {
      m.phase = "failed";
      m.error = why;
      m.waiting.clear();
    });
  }

  bool stopping() {
    std::lock_guard<std::mutex> guard{st_.mtx};
    return st_.stopping;
  }

  /// Writes `next` if the map key is still at `revision`: its new
  /// mod_revision, or nullopt.
  std::optional<int64_t> swap(int64_t revision, const partition_map& next) {
    cluster::txn_request t;
    t.compares.push_back({map_key(st_.opts),
                          cluster::txn_compare::target_kind::mod_revision,
                          revision,
                          {}});
    t.success.push_back(
      {cluster::txn_op::kind::put, map_key(st_.opts), map_json(next), 0});
    for (int i = 0; i < 20 && !stopping(); ++i) {
      auto r = st_.cp->txn(t);
      if (r)
        return r->succeeded ? std::optional<int64_t>{r->revision}
                            : std::nullopt;
      std::this_thread::sleep_for(retry_pause); // etcd away: try again
    }
    return std::nullopt;
  }

  /// After a failure behind the fence: p back to its old owner.
  void undo(int64_t revision, partition_map fenced, const std::string& why) {
    fenced.map_epoch += 1;
    fenced.owners[p_] = from_;
    if (!swap(revision, fenced))
      return fail(why + "; writing the map back failed too: partition "
                  + std::to_string(p_) + " stays fenced");
    fail(why + "; partition back on node " + std::to_string(from_));
  }

  caf::actor agent(node_id n) {
    std::lock_guard<std::mutex> guard{st_.mtx};
    if (n == st_.opts.node)
      return st_.local.mover;
    auto i = st_.connected.find(n);
    return i == st_.connected.end() ? caf::actor{} : i->second.actors.mover;
  }

  void waiting(const std::string& what) {
    update([&](move_status& m) { m.waiting = what; });
  }

  /// Waits until node `n`'s keeper holds `epoch` or more.
  bool await_epoch(node_id n, uint64_t epoch) {
    auto until = std::chrono::steady_clock::now() + give_up_after;
    while (!stopping() && std::chrono::steady_clock::now() < until) {
      if (auto a = agent(n)) {
        uint64_t held = 0;
        self_->request(a, call_timeout, caf::get_atom::value)
          .receive([&](uint64_t e) { held = e; }, [](caf::error&) {});
        if (held >= epoch) {
          waiting({});
          return true;
        }
      }
      waiting("node " + std::to_string(n) + " to take map epoch "
              + std::to_string(epoch));
      std::this_thread::sleep_for(retry_pause / 2);
    }
    return false;
  }

  /// The move's expected total (move_status::keys_total): the range's
  /// keys on the old owner, once per pass. Left 0 if it does not answer.
  void count_keys() {
    auto src = agent(from_);
    if (!src)
      return;
    self_->request(src, call_timeout, caf::get_atom::value, p_, parts_)
      .receive(
        [&](uint64_t n) {
          update([&](move_status& m) { m.keys_total = 2 * n; });
        },
        [&](caf::error& err) {
          spdlog::warn("move partition={}: no key count from node={} "
                       "error=\"{}\"",
                       p_, from_, st_.sys.render(err));
        });
  }

  enum class outcome { done, failed, source_away };

  /// One pass over p's range, from_'s chunks applied on to_. With
  /// `may_skip`, a pass that finds the old owner unreachable ends at once
  /// (source_away).
  outcome pass(const char* phase, bool may_skip) {
    update([&](move_status& m) { m.phase = phase; });
    auto cur = store::start_pass(p_, parts_);
    auto until = std::chrono::steady_clock::now() + give_up_after;
    while (!cur.done) {
      if (stopping()) {
        fail("the node is stopping");
        return outcome::failed;
      }
      if (std::chrono::steady_clock::now() > until) {
        fail(std::string(phase) + " made no progress for "
             + std::to_string(give_up_after.count()) + " minutes");
        return outcome::failed;
      }
      auto src = agent(from_);
      auto dst = agent(to_);
      if (!src && may_skip)
        return outcome::source_away;
      if (!src || !dst) {
        waiting("node " + std::to_string(src ? to_ : from_)
                + " to be reachable");
        std::this_thread::sleep_for(retry_pause);
        continue;
      }
      std::string why;
      bool ok = false;
      self_
        ->request(src, call_timeout, load_atom::value, p_, parts_, cur.next,
                  move_chunk_keys)
        .receive(
          [&](write_batch& records, std::string& span_end, bool done) {
            auto keys = records.ops.size();
            self_
              ->request(dst, call_timeout, commit_atom::value, p_, parts_,
                        cur.next, span_end, records)
              .receive(
                [&](uint64_t puts, uint64_t erases) {
                  cur.next = std::move(span_end);
                  cur.done = done;
                  ok = true;
                  update([&](move_status& m) {
                    ++m.chunks;
                    m.keys += keys;
                    m.puts += puts;
                    m.erases += erases;
                    m.waiting.clear();
                  });
                },
                [&](caf::error& err) { why = st_.sys.render(err); });
          },
          [&](caf::error& err) { why = st_.sys.render(err); });
      if (!ok) {
        if (why.find("bad_request") != std::string::npos) { // a bug, not weather
          fail(std::string(phase) + ": " + why);
          return outcome::failed;
        }
        waiting("a chunk (" + why + ")");
        std::this_thread::sleep_for(retry_pause);
      }
    }
    return outcome::done;
  }

  std::shared_ptr<state> sp_;
  state& st_;
  caf::scoped_actor self_;
  uint32_t p_;
  node_id to_;
  node_id from_ = no_node;
  uint32_t parts_ = 1;
};

} // namespace

caf::actor spawn_move_agent(caf::actor_system& sys,
                            std::shared_ptr<kv_backend> kv, caf::actor keeper,
                            caf::actor writer, node_id me) {
  return sys.spawn<caf::detached>(move_agent, std::move(kv),
                                  std::move(keeper), std::move(writer), me);
}

std::string move_status::json() const {
  return "{\"partition\":" + std::to_string(partition)
         + ",\"from\":" + std::to_string(from) + ",\"to\":"
         + std::to_string(to) + ",\"phase\":" + json_quote(phase)
         + ",\"chunks\":" + std::to_string(chunks) + ",\"keys\":"
         + std::to_string(keys) + ",\"puts\":" + std::to_string(puts)
         + ",\"erases\":" + std::to_string(erases) + ",\"keys_total\":"
         + std::to_string(keys_total) + ",\"map_epoch\":"
         + std::to_string(map_epoch) + ",\"started_ms\":"
         + std::to_string(started_ms) + ",\"unavailable_ms\":"
         + std::to_string(window_ms()) + ",\"waiting\":" + json_quote(waiting)
         + ",\"error\":" + json_quote(error) + "}";
}

void run_move(const std::shared_ptr<cluster_member::state>& sp, uint32_t p,
              node_id to) {
  driver{sp, p, to}.run();
}

} // namespace parley
