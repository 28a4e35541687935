#pragma once

// parleyctl in end-to-end tests: runs the real binary (PARLEYCTL) once with
// arguments, collects its stdout, stderr and exit code; and the flags that
// give a test node an admin port with a known token.

#include <map>
#include <string>
#include <vector>

#include "parleyd_node.hpp"

namespace parley::e2e {

/// The admin token of test nodes started with admin_args().
inline const std::string test_admin_token = "test-admin-token-0123456789";

/// parleyd flags: an admin port on a free loopback port, the test token
/// (its hash) accepted. node::admin_port is then set.
std::vector<std::string> admin_args();

/// A fresh empty directory for parleyctl's HOME (no config file or
/// history of the user's is read); the caller removes it.
std::string fresh_home();

/// In a forked child: replaces it with parleyctl, `args` after the
/// program name, `envs` (NAME=VALUE) as its whole environment.
[[noreturn]] void exec_parleyctl(const std::vector<std::string>& args,
                                 const std::vector<std::string>& envs);

struct ctl_result {
  int exit_code = -1;  ///< -1: killed, or did not end within the timeout
  std::string out;
  std::string err;
};

/// Runs parleyctl with `args` (nothing added) and `env` added to a
/// minimal environment (PATH, HOME set to a fresh empty directory, so no
/// config file of the user's is read). Ends it (SIGKILL) after
/// `timeout_ms`.
ctl_result run_parleyctl(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {},
                         int timeout_ms = 60000);

/// parleyctl --node 127.0.0.1:ADMIN --token test_admin_token ARGS...
ctl_result ctl(const node& n, const std::vector<std::string>& args,
               int timeout_ms = 60000);

} // namespace parley::e2e
