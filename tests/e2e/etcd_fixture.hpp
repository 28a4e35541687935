#pragma once

// Test helpers for the control-plane client: a real etcd (Debian's binary)
// on free loopback ports with its own temporary data dir, and a tiny fake
// HTTP server on loopback that answers canned bytes.

#include "runtime/cluster/etcd_client.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace parley::e2e {

/// A free loopback TCP port (bound once, then released).
uint16_t free_port();

/// One etcd process. start() polls GET /health a bounded number of times;
/// stop() sends SIGTERM and waits for the exit (SIGKILL after a bound).
class etcd_process {
public:
  etcd_process();
  ~etcd_process(); ///< stops etcd and removes the data dir

  /// Starts etcd (again, on the same ports and data); false if it does not
  /// become healthy (its log is printed then).
  bool start();
  void stop();

  cluster::etcd_options options() const;

private:
  std::string dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
};

/// A loopback server answering the i-th connection with answers[i] (raw
/// bytes: status line, headers, body) after reading its request, then
/// closing it; with `hold_last`, the last connection stays open (answered
/// or not) until the server is destroyed. Connections past the list get
/// no answer and are closed.
class fake_http_server {
public:
  explicit fake_http_server(std::vector<std::string> answers,
                            bool hold_last = false);
  ~fake_http_server();

  uint16_t port() const {
    return port_;
  }
  cluster::etcd_options options() const;
  /// Every request read so far (headers and body).
  std::vector<std::string> requests();
  /// False if fewer than `n` requests came within a generous bound.
  bool wait_for_requests(size_t n);

private:
  void serve();

  std::vector<std::string> answers_;
  bool hold_last_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

} // namespace parley::e2e
