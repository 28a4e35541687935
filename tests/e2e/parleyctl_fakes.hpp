#pragma once

// Test doubles for parleyctl's own tests: a pseudo-terminal session that
// runs parleyctl as a person would (typed bytes in, screen bytes out,
// waiting for text, never sleeping), and a scripted admin port that
// answers each request from a function, for answers a real node gives
// rarely (a failed job, a refused token, metrics with known numbers).

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace parley::e2e {

/// parleyctl on a pseudo-terminal (forkpty), HOME a fresh directory.
class pty_session {
public:
  pty_session(const std::vector<std::string>& args,
              const std::map<std::string, std::string>& env = {});
  /// Kills (SIGKILL) and reaps parleyctl if it still runs; removes HOME.
  ~pty_session();

  void type(const std::string& bytes);
  /// Waits until the line editor holds the terminal (not in canonical
  /// mode, where a typed Ctrl-D would become the kernel's end-of-file),
  /// then types `bytes`.
  void type_at_prompt(const std::string& bytes);
  /// Waits (at most `timeout_ms`) until `text` appears in the output after
  /// what earlier expect() calls consumed; consumes through it.
  bool expect(const std::string& text, int timeout_ms = 20000);
  /// Reads until parleyctl closes the terminal; returns its exit code (-1
  /// if it did not end within `timeout_ms`).
  int wait_exit(int timeout_ms = 20000);

  std::string home;   ///< parleyctl's HOME
  std::string output; ///< everything read so far

private:
  bool read_some(int timeout_ms);
  pid_t pid_ = -1;
  int fd_ = -1;
  size_t consumed_ = 0;
};

/// A loopback TCP port that refuses connections: bound, never listening,
/// held until destruction (so nothing else takes it).
class dead_port {
public:
  dead_port();
  ~dead_port();
  uint16_t port = 0;

private:
  int fd_ = -1;
};

/// A scripted admin port on loopback: one HTTP/1.1 request per connection,
/// answered by `answer(method, target, body, authorization)` -> {status,
/// JSON body}.
class fake_admin {
public:
  struct reply {
    unsigned status;
    std::string body;
  };
  using script = std::function<reply(const std::string& method,
                                     const std::string& target,
                                     const std::string& body,
                                     const std::string& authorization)>;
  explicit fake_admin(script answer);
  ~fake_admin();
  uint16_t port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  /// Requests answered so far.
  int requests() const { return requests_; }

private:
  void serve();
  script answer_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

} // namespace parley::e2e
