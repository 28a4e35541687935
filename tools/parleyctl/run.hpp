#pragma once

// run: one command line of parleyctl, the same in one-shot mode and in the
// shell: parse it against the command table, send its request, print the
// answer (or follow a job, or run `metrics top`), and say how it ended.

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "runtime/admin/command_table.hpp"
#include "tools/parleyctl/config.hpp"
#include "tools/parleyctl/json.hpp"

namespace parley::ctl {

/// parleyctl's exit codes.
enum exit_code : int {
  exit_ok = 0,
  exit_refused = 1,     ///< the node refused the command (or a job failed)
  exit_usage = 2,       ///< bad command, arguments, flags or config
  exit_unreachable = 3, ///< no answer from the node
  exit_token = 4,       ///< 401/403: the token was refused
  exit_interrupted = 130,
};

/// Parses and runs `words`; prints to stdout, errors to stderr.
int run_words(const settings& s, const std::vector<std::string>& words);

/// Runs a parsed command.
int run_command(const settings& s, const admin::parsed_command& cmd);

/// Sends `req`; on an answer with a 2xx status returns its JSON, else
/// prints why (cannot reach, token refused, the node's message) and sets
/// `code`. `stop`: give up when it becomes true (code 130, nothing printed).
std::optional<json> send(const settings& s, const admin::request& req,
                         int& code, const std::atomic<bool>* stop = nullptr);

/// Follows the job described by `job` (client_mode::job) until it ends.
int follow_job(const settings& s, json job);

/// metrics top: polls `req` every second and shows rates and latencies.
int run_top(const settings& s, const admin::request& req);

/// Set by SIGINT while a handler from catch_sigint() is installed.
extern std::atomic<bool> sigint_seen;

/// Installs (true) the SIGINT handler that sets sigint_seen (no
/// SA_RESTART: a blocked read returns), or puts back (false) the handler
/// it replaced.
void catch_sigint(bool on);

} // namespace parley::ctl
