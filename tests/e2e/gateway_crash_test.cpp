// kill -9 of parleyd while 20 senders stream over WebSocket; restart on the
// same data; every sender reconnects and retries what it did not see
// accepted (same client_message_id); the recipient syncs. Every message a
// sender saw accepted is there exactly once, sequences have no gaps, and
// nothing is duplicated.

#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "parleyd_node.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

std::atomic<size_t> accepted_total{0}; // progress, read by the test thread

struct sender_log {
  uint64_t conv = 0;
  std::map<std::string, uint64_t> accepted; // cmid -> seq
  std::set<std::string> sent;
};

/// Sends, 16 in flight: first (with `resend_unacked`) every cmid sent
/// before but never seen accepted, then up to `count` new cmids
/// s<sender>-<n>, until the connection dies.
void stream(uint16_t port, const std::string& token, int sender,
            sender_log& log, size_t count, bool resend_unacked) {
  try {
    ws_client c{port};
    auto w = c.call(hello(1, token), frame_format::binary, 5000);
    if (!w || !w->has_welcome())
      return;
    auto o = c.call(open_direct(2, "rcpt"), frame_format::binary, 5000);
    if (!o || !o->has_direct_opened())
      return;
    log.conv = o->direct_opened().conversation_id();
    std::vector<std::string> todo;
    if (resend_unacked)
      for (auto& cmid : log.sent)
        if (!log.accepted.count(cmid))
          todo.push_back(cmid);
    const size_t goal = todo.size() + count;
    for (size_t i = 0; todo.size() < goal; ++i) {
      auto cmid = "s" + std::to_string(sender) + "-" + std::to_string(i);
      if (!log.sent.count(cmid))
        todo.push_back(cmid);
      if (i > 100000)
        break;
    }
    std::map<uint32_t, std::string> inflight;
    uint32_t rid = 10;
    size_t next = 0;
    while (next < todo.size() || !inflight.empty()) {
      while (inflight.size() < 16 && next < todo.size()) {
        auto& cmid = todo[next++];
        log.sent.insert(cmid);
        inflight[rid] = cmid;
        c.send(send_frame(rid++, log.conv, cmid, "x"), frame_format::binary);
      }
      auto f = c.read(5000);
      if (!f)
        return; // the server died
      auto i = inflight.find(f->request_id());
      if (i == inflight.end())
        continue;
      if (f->has_accepted()) {
        log.accepted[i->second] = f->accepted().server_sequence();
        ++accepted_total;
      }
      inflight.erase(i);
      if (log.accepted.size() >= count && !resend_unacked)
        next = todo.size(); // enough: drain
    }
  } catch (...) {
    // connection refused or reset: the node is down
  }
}

} // namespace

TEST_CASE("kill_9_of_parleyd_under_20_senders_loses_and_duplicates_nothing") {
  // Senders stream as fast as the server takes them and retry everything
  // after the restart: no rate limits here (they have tests of their own).
  node n{{"--parley.no-rate-limits"}};
  const int senders = 20;
  std::vector<std::string> tokens;
  for (int s = 0; s < senders; ++s)
    tokens.push_back(n.account("sender" + std::to_string(s), "d"));
  auto rcpt = n.account("rcpt", "d");
  auto port = n.port;
  std::vector<sender_log> logs(senders);
  {
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s)
      threads.emplace_back([&, s] {
        stream(port, tokens[s], s, logs[s], 100000, false);
      });
    // Kill once the stream is well under way.
    for (int i = 0; i < 200; ++i) {
      if (accepted_total.load() > 3000)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    n.stop(SIGKILL);
    for (auto& t : threads)
      t.join();
  }
  size_t acked_before = 0, unacked = 0;
  for (auto& l : logs) {
    acked_before += l.accepted.size();
    unacked += l.sent.size() - l.accepted.size();
  }
  MESSAGE(acked_before << " sends accepted before kill -9, " << unacked
                       << " in flight");
  CHECK(acked_before > 0);
  // Restart on the same data; every sender retries what it did not see
  // accepted, with the same client_message_id.
  n.restart();
  port = n.port;
  auto before = logs; // what each sender saw accepted before the crash
  {
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s)
      threads.emplace_back([&, s] {
        stream(port, tokens[s], s, logs[s], 0, true);
      });
    for (auto& t : threads)
      t.join();
  }
  for (int s = 0; s < senders; ++s) {
    CAPTURE(s);
    CHECK(logs[s].accepted.size() == logs[s].sent.size()); // all answered
    for (auto& [cmid, seq] : before[s].accepted)
      CHECK(logs[s].accepted[cmid] == seq); // retries keep their answer
  }
  // The recipient syncs everything: each conversation gapless from 1, each
  // cmid once, at the sequence its sender was told.
  ws_client r{port};
  REQUIRE(r.call(hello(1, rcpt), frame_format::binary)->has_welcome());
  std::map<uint64_t, std::vector<std::pair<uint64_t, std::string>>> got;
  std::map<uint64_t, uint64_t> cursors;
  for (auto& l : logs)
    cursors[l.conv] = 0;
  for (auto& page : sync_all(r, cursors, 1000, frame_format::binary, 2))
    for (auto& m : page.messages())
      got[m.conversation_id()].emplace_back(m.server_sequence(),
                                            m.client_message_id());
  size_t total = 0;
  for (auto& l : logs) {
    auto& msgs = got[l.conv];
    std::set<std::string> seen;
    for (size_t i = 0; i < msgs.size(); ++i) {
      CHECK(msgs[i].first == i + 1);                // gapless, in order
      CHECK(seen.insert(msgs[i].second).second);    // no duplicate
    }
    CHECK(msgs.size() == l.accepted.size());
    for (auto& [cmid, seq] : l.accepted) {
      REQUIRE(seq >= 1);
      REQUIRE(seq <= msgs.size());
      CHECK(msgs[seq - 1].second == cmid);
    }
    total += msgs.size();
  }
  MESSAGE(total << " messages delivered by sync after the restart");
}
