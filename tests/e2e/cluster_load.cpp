#include "cluster_load.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <regex>

#include "cluster_fixture.hpp"
#include "ws_client.hpp"

namespace parley::e2e {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

int64_t ms_since(steady_clock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0)
    .count();
}

/// A client's pause before retrying: what the server asked for, at least
/// 50 ms (UNAVAILABLE may carry none), at most 500 ms (keeps tests short).
milliseconds backoff(const v1::Error& e) {
  auto want = static_cast<int64_t>(e.retry_after_ms());
  return milliseconds(std::clamp<int64_t>(want, 50, 500));
}

} // namespace

std::string payload_of(const std::string& cmid) {
  return "load " + cmid;
}

sender::sender(uint16_t port, const std::string& token, uint64_t conv,
               std::string prefix, int answer_bound_ms)
  : prefix(std::move(prefix)), conv_(conv), bound_ms_(answer_bound_ms) {
  dev_.connect(port, token);
  thread_ = std::thread([this] { run(); });
}

sender::~sender() {
  stop();
}

void sender::stop() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
}

void sender::run() {
  // Far more than any test sends: a bound, not a target.
  for (int i = 0; i < 100000 && !stop_; ++i) {
    auto cmid = prefix + std::to_string(i);
    int streak = 0;
    steady_clock::time_point first_error, stopping_since;
    for (;;) {
      auto t0 = steady_clock::now();
      auto rid = dev_.send(text(conv_, cmid, payload_of(cmid)));
      auto f = dev_.answer(rid, bound_ms_);
      auto waited = ms_since(t0);
      stats_.longest_wait_ms = std::max(stats_.longest_wait_ms, waited);
      if (!f) {
        stats_.problems.push_back(
          cmid + ": no answer within " + std::to_string(bound_ms_) + " ms"
          + (dev_.ws->closed() ? " (connection closed, code "
                                   + std::to_string(dev_.ws->close_code()) + ")"
                               : ""));
        failed_ = true;
        return;
      }
      if (f->has_accepted()) {
        auto& a = f->accepted();
        if (a.client_message_id() != cmid || a.conversation_id() != conv_) {
          stats_.problems.push_back(cmid + ": accepted as " + a.DebugString());
          failed_ = true;
          return;
        }
        stats_.accepted[cmid] = a.server_sequence();
        stats_.order.push_back(cmid);
        stats_.accept_times.push_back({cmid, t0, steady_clock::now()});
        if (streak > 0) {
          stats_.retried[cmid] = streak;
          stats_.longest_streak = std::max(stats_.longest_streak, streak);
          stats_.longest_streak_ms = std::max(stats_.longest_streak_ms,
                                              ms_since(first_error));
        }
        ++accepted_n_;
        break;
      }
      if (f->has_error() && f->error().retryable()) {
        auto& e = f->error();
        // Asked to stop: the message in hand gets 30 s more, not forever.
        if (stop_ && stopping_since == steady_clock::time_point{})
          stopping_since = steady_clock::now();
        if (stop_ && ms_since(stopping_since) > 30000) {
          stats_.problems.push_back(cmid + ": still refused 30 s after the "
                                           "test stopped sending: " + e.DebugString());
          failed_ = true;
          return;
        }
        ++stats_.errors[v1::Error::Code_Name(e.code())];
        if (e.code() == v1::Error::CODE_UNAVAILABLE && e.retry_after_ms() == 0)
          ++stats_.unavailable_without_retry_after;
        if (streak++ == 0)
          first_error = t0;
        ++errors_n_;
        std::this_thread::sleep_for(backoff(e));
        continue;
      }
      stats_.problems.push_back(cmid + ": " + f->DebugString());
      failed_ = true;
      return;
    }
  }
}

std::optional<v1::ServerFrame> sender::resend(const std::string& cmid) {
  return dev_.answer(dev_.send(text(conv_, cmid, payload_of(cmid))), bound_ms_);
}

std::vector<std::string> check_history(uint16_t port, const std::string& token,
                                       uint64_t conv,
                                       const std::vector<const sender*>& senders,
                                       uint64_t* head) {
  std::vector<std::string> out;
  auto msgs = history(port, token, conv);
  if (head)
    *head = msgs.empty() ? 0 : msgs.back().server_sequence();
  std::map<std::string, uint64_t> want; // every accepted message
  for (auto* s : senders)
    for (auto& [cmid, seq] : s->stats().accepted)
      want[cmid] = seq;
  std::map<std::string, int> seen;
  for (size_t i = 0; i < msgs.size(); ++i) {
    auto& m = msgs[i];
    if (m.server_sequence() != i + 1) {
      out.push_back("position " + std::to_string(i) + " holds sequence "
                    + std::to_string(m.server_sequence()) + " (gap or order)");
      break;
    }
    auto& cmid = m.client_message_id();
    bool ours = false;
    for (auto* s : senders)
      ours = ours || cmid.rfind(s->prefix, 0) == 0;
    if (!ours)
      continue; // the group's own events
    if (++seen[cmid] > 1)
      out.push_back(cmid + " twice (again at " + std::to_string(m.server_sequence())
                    + ")");
    auto it = want.find(cmid);
    if (it == want.end())
      out.push_back(cmid + " at " + std::to_string(m.server_sequence())
                    + " was never accepted");
    else if (it->second != m.server_sequence())
      out.push_back(cmid + " at " + std::to_string(m.server_sequence())
                    + ", accepted as " + std::to_string(it->second));
    if (m.payload() != payload_of(cmid))
      out.push_back(cmid + " with payload " + m.DebugString());
  }
  for (auto& [cmid, seq] : want)
    if (seen.count(cmid) == 0)
      out.push_back(cmid + " accepted as " + std::to_string(seq)
                    + " is missing (lost)");
  return out;
}

std::vector<user_account> users_on(test_cluster& c, const std::vector<node_id>& on,
                                   const std::string& prefix, node_id avoid) {
  std::vector<user_account> out;
  int k = 0;
  for (size_t i = 0; i < on.size(); ++i) {
    for (int tries = 0;; ++tries) {
      REQUIRE_MESSAGE(tries < 60, "no user of node " << on[i]
                                    << " outside node " << avoid << "'s partitions");
      auto u = register_user(c.port(on[i]), prefix + std::to_string(k++), "phone");
      if (c.owner_of_user(u.id) != avoid) {
        out.push_back(u);
        break;
      }
    }
  }
  return out;
}

uint64_t group_on(test_cluster& c, uint16_t port, const user_account& creator,
                  const std::vector<uint64_t>& members, node_id owner) {
  device d;
  d.connect(port, creator.token);
  for (int k = 0; k < 60; ++k) {
    auto f = d.call(group_create("load", members));
    REQUIRE(f);
    REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
    auto conv = f->accepted().conversation_id();
    if (c.owner_of_conversation(conv) == owner)
      return conv;
  }
  FAIL("no group landed on node " << owner);
  return 0;
}

void print_stats(const sender& s) {
  auto& st = s.stats();
  std::string errs;
  for (auto& [code, n] : st.errors)
    errs += " " + code + "=" + std::to_string(n);
  MESSAGE("sender " << s.prefix << ": accepted " << st.accepted.size()
                    << ", retried messages " << st.retried.size()
                    << ", errors" << (errs.empty() ? " none" : errs)
                    << " (UNAVAILABLE without retryAfterMs: "
                    << st.unavailable_without_retry_after
                    << "), longest wait " << st.longest_wait_ms
                    << " ms, longest retry streak " << st.longest_streak
                    << " errors / " << st.longest_streak_ms << " ms");
  for (auto& p : st.problems)
    MESSAGE("sender " << s.prefix << " problem: " << p);
}

// -- admin port ---------------------------------------------------------------

const char* const admin_token = "e2e-admin-token";

std::vector<std::string> admin_flags() {
  // printf %s e2e-admin-token | b2sum -l 256
  return {"--parley.admin-token-hash="
          "23a35da3a50ffbbcd901e0863ff44be1ba0bf247d942aea3ce42d59461eca7c1",
          "--parley.admin-listen=127.0.0.1:0"};
}

uint16_t admin_port(const cluster_node& n) {
  auto text = n.log();
  std::regex line("admin listening address=\\S+ port=(\\d+)");
  uint16_t port = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), line);
       it != std::sregex_iterator(); ++it)
    port = static_cast<uint16_t>(std::stoi((*it)[1].str()));
  return port;
}

http_result admin_call(test_cluster& c, node_id n, const std::string& method,
                       const std::string& target, const std::string& body) {
  auto port = admin_port(c.at(n));
  REQUIRE_MESSAGE(port != 0, "node " << n << " logged no admin port");
  return http_call(port, method, target, body, admin_token);
}

void start_move(test_cluster& c, node_id via, uint32_t p, node_id to) {
  auto r = admin_call(c, via, "POST",
                      "/v1/admin/partitions/" + std::to_string(p) + "/move",
                      "{\"to\":" + std::to_string(to) + "}");
  REQUIRE_MESSAGE(r.status == 202, "move of " << p << " to " << to << ": "
                                              << r.status << " " << r.body);
}

std::string move_of(test_cluster& c, node_id via, uint32_t p) {
  auto r = admin_call(c, via, "GET", "/v1/admin/partitions");
  if (r.status != 200)
    return "";
  // The moves (after the map's {"partition":P,"owner":N} rows) have "from".
  std::regex obj("\\{\"partition\":" + std::to_string(p)
                 + ",\"from\":[^}]*\\}");
  std::string last;
  for (auto it = std::sregex_iterator(r.body.begin(), r.body.end(), obj);
       it != std::sregex_iterator(); ++it)
    last = it->str();
  return last;
}

std::string json_text_field(const std::string& json, const std::string& key) {
  std::smatch m;
  if (std::regex_search(json, m, std::regex("\"" + key + "\":\"([^\"]*)\"")))
    return m[1].str();
  return "";
}

int64_t json_number_field(const std::string& json, const std::string& key) {
  std::smatch m;
  if (std::regex_search(json, m, std::regex("\"" + key + "\":(-?[0-9]+)")))
    return std::stoll(m[1].str());
  return -1;
}

std::string wait_move(test_cluster& c, node_id via, uint32_t p,
                      const std::function<bool(const std::string&)>& done) {
  std::string last;
  eventually([&] {
    last = move_of(c, via, p);
    return done(json_text_field(last, "phase"));
  }, 120000);
  return last;
}

sender_list start_senders(test_cluster& c,
                          const std::vector<user_account>& users,
                          uint64_t conv,
                          const std::function<node_id(size_t)>& on_node) {
  sender_list out;
  for (size_t i = 0; i < users.size(); ++i)
    out.push_back(std::make_unique<sender>(c.port(on_node(i)), users[i].token,
                                           conv, "s" + std::to_string(i) + "-"));
  return out;
}

std::vector<int> accepted_counts(const sender_list& senders) {
  std::vector<int> out;
  for (auto& s : senders)
    out.push_back(s->accepted());
  return out;
}

bool each_sent(const sender_list& senders, const std::vector<int>& base,
               int more) {
  for (size_t i = 0; i < senders.size(); ++i)
    if (senders[i]->accepted() < base[i] + more && !senders[i]->failed())
      return false;
  return true;
}

} // namespace parley::e2e
