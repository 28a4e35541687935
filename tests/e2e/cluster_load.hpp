#pragma once

// Load for the cluster failure tests (issue 22): senders that keep sending
// to one conversation from a thread of their own, each with its own
// clientMessageId sequence, waiting for every answer within a generous
// bound and retrying retryable errors with the same clientMessageId; the
// check that a conversation's history holds every accepted message once,
// gapless, in order; and the admin port (token, port from the log, calls).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster_clients.hpp"
#include "cluster_fixture.hpp"

namespace parley::e2e {

/// What one sender saw (read after stop()).
struct sender_stats {
  std::map<std::string, uint64_t> accepted; ///< clientMessageId -> sequence
  std::vector<std::string> order;           ///< clientMessageIds, accept order
  std::map<std::string, int> retried;       ///< clientMessageId -> errors first
  std::map<std::string, int> errors;        ///< error code name -> count
  int unavailable_without_retry_after = 0;
  int64_t longest_wait_ms = 0;   ///< one request to its answer
  int longest_streak = 0;        ///< retryable errors in a row, one message
  int64_t longest_streak_ms = 0; ///< first error of a streak to its Accepted
  std::vector<std::string> problems; ///< no answer, closes, bad answers
  /// Each Accepted: its clientMessageId, when its (last) request was sent
  /// and when the answer came.
  struct accept_time {
    std::string cmid;
    std::chrono::steady_clock::time_point sent, answered;
  };
  std::vector<accept_time> accept_times;
};

/// One device sending `prefix`0, `prefix`1, ... to `conv`, one request at
/// a time, until stopped (then it finishes the message in hand).
class sender {
public:
  /// Connects (REQUIREs a Welcome) in the calling thread; starts sending.
  sender(uint16_t port, const std::string& token, uint64_t conv,
         std::string prefix, int answer_bound_ms = 60000);
  ~sender(); ///< stop()

  /// Asks the thread to end after the message in hand; waits for it.
  void stop();
  int accepted() const {
    return accepted_n_.load();
  }
  int retryable_errors() const {
    return errors_n_.load();
  }
  /// True once the thread gave up (a problem: see stats().problems).
  bool failed() const {
    return failed_.load();
  }
  const sender_stats& stats() const {
    return stats_;
  }
  /// After stop(): sends `cmid` (with its payload) again on the same
  /// connection; the answer (nullopt: none within the bound).
  std::optional<v1::ServerFrame> resend(const std::string& cmid);

  const std::string prefix;

private:
  void run();

  device dev_;
  uint64_t conv_;
  int bound_ms_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<int> accepted_n_{0};
  std::atomic<int> errors_n_{0};
  sender_stats stats_;
  std::thread thread_;
};

/// The payload a sender sends with `cmid` (the same on every retry).
std::string payload_of(const std::string& cmid);

/// Checks `conv`'s history as a sync from sequence 0 through `port` with
/// `token` shows it: sequences 1..H gapless and in order, every accepted
/// clientMessageId of `senders` exactly once at its accepted sequence with
/// its payload, and no sent message that was never accepted. Returns the
/// problems found (empty: fine); `head` gets H.
std::vector<std::string> check_history(uint16_t port, const std::string& token,
                                       uint64_t conv,
                                       const std::vector<const sender*>& senders,
                                       uint64_t* head = nullptr);

/// Registers a user `prefix`i through node `on[i]` for each i, each one
/// whose user partition node `avoid` does not own (REQUIREs it).
std::vector<user_account> users_on(test_cluster& c, const std::vector<node_id>& on,
                                   const std::string& prefix, node_id avoid);
/// `creator` (through `port`) creates groups with `members` until one
/// lands on node `owner`: its conversation id (REQUIREs one).
uint64_t group_on(test_cluster& c, uint16_t port, const user_account& creator,
                  const std::vector<uint64_t>& members, node_id owner);

using sender_list = std::vector<std::unique_ptr<sender>>;

/// One sender per user to `conv`: user i through node on_node(i)'s client
/// port, sending "s<i>-0", "s<i>-1", ...
sender_list start_senders(test_cluster& c,
                          const std::vector<user_account>& users,
                          uint64_t conv,
                          const std::function<node_id(size_t)>& on_node);

/// Each sender's accepted() now.
std::vector<int> accepted_counts(const sender_list& senders);

/// Whether each sender has `more` accepted beyond its `base` (or gave up).
bool each_sent(const sender_list& senders, const std::vector<int>& base,
               int more);

/// Prints a sender's numbers (MESSAGE).
void print_stats(const sender& s);

// -- admin port ---------------------------------------------------------------

/// The admin token the tests use and parleyd's flags for it (admin port on
/// a free loopback port).
extern const char* const admin_token;
std::vector<std::string> admin_flags();
/// The admin port node `n` logged last ("admin listening ... port=P"), 0
/// if none.
uint16_t admin_port(const cluster_node& n);
/// A request to node `n`'s admin port with the admin token.
http_result admin_call(test_cluster& c, node_id n, const std::string& method,
                       const std::string& target, const std::string& body = {});
/// POSTs the move of partition `p` to node `to` through node `via`
/// (REQUIREs 202: the move's job, see runtime/admin/jobs.hpp).
void start_move(test_cluster& c, node_id via, uint32_t p, node_id to);
/// The newest move of partition `p` in node `via`'s GET
/// /v1/admin/partitions ("moves"): its JSON object ("" if none).
std::string move_of(test_cluster& c, node_id via, uint32_t p);
/// A string / number field of a flat JSON object ("" / -1 if absent).
std::string json_text_field(const std::string& json, const std::string& key);
int64_t json_number_field(const std::string& json, const std::string& key);
/// Polls move_of until its phase satisfies `done` (bounded: 120 s); the
/// last JSON seen.
std::string wait_move(test_cluster& c, node_id via, uint32_t p,
                      const std::function<bool(const std::string&)>& done);

} // namespace parley::e2e
