// crash_driver: sends through the real node actors with a real LevelDB, for
// the process-level crash test (crash_test.cpp kills it with SIGKILL).
//
//   crash_driver send DIR CONV FIRST COUNT WINDOW  -> "ACK cmid seq id dedup"
//   crash_driver dump DIR CONV                     -> "MSG seq cmid"
//
// `send` sends cmids m<FIRST>..m<FIRST+COUNT-1> as user 1, device 1, with
// WINDOW sends in flight, retrying errors, and prints one line per answer,
// flushed before the next send can be answered.

#include <cstdio>
#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "runtime/config.hpp"
#include "runtime/node.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/leveldb_backend.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

struct sender_state {
  conversation_actor conv;
  conversation_id conv_id = 0;
  uint64_t first = 0, count = 0, next = 0, done = 0;
};

void send_one(caf::stateful_actor<sender_state>* self, uint64_t i) {
  send_request req;
  req.conversation = self->state.conv_id;
  req.sender_user = 1;
  req.sender_device = 1;
  req.client_message_id = "m" + std::to_string(i);
  req.kind = 1;
  req.payload = std::string(200, 'x');
  self->request(self->state.conv, 30s, send_atom::value, req)
    .then(
      [=](send_result& r) {
        std::printf("ACK %s %llu %s %d\n", req.client_message_id.c_str(),
                    static_cast<unsigned long long>(r.server_sequence),
                    r.server_message_id.c_str(), r.deduplicated ? 1 : 0);
        std::fflush(stdout);
        auto& st = self->state;
        if (++st.done == st.count) {
          self->quit();
          return;
        }
        if (st.next < st.first + st.count)
          send_one(self, st.next++);
      },
      [=](caf::error&) { send_one(self, i); });
}

caf::behavior sender(caf::stateful_actor<sender_state>* self,
                     conversation_actor conv, conversation_id conv_id,
                     uint64_t first, uint64_t count, uint64_t window) {
  auto& st = self->state;
  st.conv = conv;
  st.conv_id = conv_id;
  st.first = first;
  st.count = count;
  st.next = first;
  while (st.next < first + count && st.next - first < window)
    send_one(self, st.next++);
  return {[](caf::unit_t) {}};
}

int usage() {
  std::fprintf(stderr, "usage: crash_driver send DIR CONV FIRST COUNT WINDOW\n"
                       "       crash_driver dump DIR CONV\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 4)
    return usage();
  std::string cmd = argv[1];
  auto kv = leveldb_backend::open(argv[2]);
  if (!kv) {
    std::fprintf(stderr, "crash_driver: cannot open %s\n", argv[2]);
    return 1;
  }
  conversation_id conv = std::strtoull(argv[3], nullptr, 10);
  if (cmd == "dump") {
    auto msgs = store::fetch_messages(**kv, conv, 0, UINT64_MAX);
    if (!msgs) {
      std::fprintf(stderr, "crash_driver: read failed\n");
      return 1;
    }
    for (auto& m : *msgs)
      std::printf("MSG %llu %s\n", static_cast<unsigned long long>(m.seq),
                  m.client_message_id.c_str());
    return 0;
  }
  if (cmd != "send" || argc != 7)
    return usage();
  uint64_t first = std::strtoull(argv[4], nullptr, 10);
  uint64_t count = std::strtoull(argv[5], nullptr, 10);
  uint64_t window = std::strtoull(argv[6], nullptr, 10);
  spdlog::set_level(spdlog::level::warn); // stdout carries the protocol
  node_config cfg;
  caf::actor_system sys{cfg};
  node_options opts;
  opts.kv = *kv;
  node n{sys, opts};
  n.start();
  caf::scoped_actor self{sys};
  conversation_actor hdl;
  self->request(n.directory(), 30s, caf::get_atom::value, conv)
    .receive([&](conversation_actor& c) { hdl = c; },
             [&](caf::error& err) { std::abort(); });
  self->request(hdl, 30s, caf::join_atom::value, user_id{1})
    .receive([](sequence) {}, [](caf::error&) { std::abort(); });
  auto s = sys.spawn(sender, hdl, conv, first, count, window);
  self->wait_for(s);
  std::printf("DONE\n");
  std::fflush(stdout);
  n.stop();
  return 0;
}
