// parley-bench --mode idle: N authenticated WebSocket connections that stay
// idle; reports the server's resident memory per connection.

#include "ws_mode.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "ws_peer.hpp"

namespace parley::bench {

namespace {

/// VmRSS of `pid` in KiB, or -1.
long rss_kib(int64_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

std::string login_device(const ws_options& o, const std::string& name,
                         int device) {
  auto body = http_post(o, "/v1/login",
                        R"({"username":")" + name
                          + R"(","password":"bench password","deviceName":"d)"
                          + std::to_string(device) + R"("})");
  std::smatch m;
  if (!std::regex_search(body, m, std::regex("\"token\":\"([^\"]+)\"")))
    throw std::runtime_error("login failed for " + name + ": " + body);
  return m[1].str();
}

} // namespace

int run_idle(const ws_options& o, uint64_t connections,
             const std::string& cmdline) {
  if (o.server_pid <= 0)
    throw std::runtime_error("--mode idle needs --server-pid");
  auto run_id = std::to_string(::getpid()) + "x"
                + std::to_string(std::random_device{}() % 100000);
  std::vector<std::string> tokens;
  for (uint64_t i = 0; tokens.size() < connections; ++i) {
    auto name = "bi" + run_id + "n" + std::to_string(i);
    http_post(o, "/v1/accounts",
              R"({"username":")" + name
                + R"(","password":"bench password"})");
    for (int d = 0; d < 8 && tokens.size() < connections; ++d)
      tokens.push_back(login_device(o, name, d));
  }
  auto before = rss_kib(o.server_pid);
  asio::io_context ioc;
  stats st;
  std::vector<std::shared_ptr<peer>> peers;
  uint64_t ready = 0;
  auto on_ready = [&] { ++ready; };
  for (auto& t : tokens) {
    auto p = std::make_shared<peer>(ioc, o, st);
    p->token = t;
    peers.push_back(p);
  }
  if (!connect_all(ioc, peers, ready, on_ready))
    return 1;
  ioc.run_for(std::chrono::seconds(2)); // let the server settle
  auto after = rss_kib(o.server_pid);
  auto count = peers.size();
  shut_down(ioc, peers);
  std::printf("command: %s\n", cmdline.c_str());
  std::printf("idle authenticated connections: %zu\n", count);
  std::printf("server RSS: %ld KiB before, %ld KiB after: %.1f KiB per "
              "connection (user space; the kernel's socket buffers, ~5 KB "
              "per idle loopback socket, are not in RSS)\n",
              before, after,
              double(after - before) / double(count));
  return 0;
}

} // namespace parley::bench
