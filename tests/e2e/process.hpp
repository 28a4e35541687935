#pragma once

// A child process for end-to-end tests: started with its stdout (and
// stderr) on a pipe, read line by line with a timeout, signalled and reaped
// by PID. The destructor kills only the process it started.

#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>

namespace parley::e2e {

class child {
public:
  child(const std::string& exe, const std::vector<std::string>& args);
  ~child();

  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// Reads one line (without '\n'). False on end of output or timeout.
  bool read_line(std::string& line, int timeout_ms = 10000);

  /// Reads lines until one contains `needle`; false on EOF or timeout.
  bool wait_for_line(const std::string& needle, int timeout_ms = 10000);

  void signal(int sig);

  /// Waits for exit; returns the wait status, or -1 after `timeout_ms`.
  int wait(int timeout_ms = 10000);

  pid_t pid() const {
    return pid_;
  }

  /// Every line read so far.
  const std::vector<std::string>& lines() const {
    return lines_;
  }

  /// Whether a line read so far contains `needle`.
  bool saw(const std::string& needle) const {
    for (auto& l : lines_)
      if (l.find(needle) != std::string::npos)
        return true;
    return false;
  }

private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string buf_;
  std::vector<std::string> lines_;
};

/// The port of parleyd's "node started ... port=N" line, reading `c` until
/// it comes; 0 if it does not come within `timeout_ms` per line (then every
/// line read is printed, for the failure's report).
uint16_t started_port(child& c, int timeout_ms = 30000);

/// The exit code of a wait status; -1 if the process did not exit (killed
/// by a signal, or `wait` timed out).
inline int exit_code(int status) {
  return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace parley::e2e
