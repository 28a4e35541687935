#pragma once

// A child process for end-to-end tests: started with its stdout (and
// stderr) on a pipe, read line by line with a timeout, signalled and reaped
// by PID. The destructor kills only the process it started.

#include <string>
#include <vector>

#include <sys/types.h>

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

private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string buf_;
  std::vector<std::string> lines_;
};

} // namespace parley::e2e
