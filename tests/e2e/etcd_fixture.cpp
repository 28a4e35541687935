#include "etcd_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace parley::e2e {

namespace {

int loopback_listener(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || ::listen(fd, 16) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("cannot listen on loopback");
  port = ntohs(a.sin_port);
  return fd;
}

// Waits up to `ms` for `fd` to become readable.
bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

} // namespace

uint16_t free_port() {
  uint16_t port = 0;
  ::close(loopback_listener(port));
  return port;
}

etcd_process::etcd_process() {
  char tmpl[] = "/tmp/parley-etcd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  client_port_ = free_port();
  peer_port_ = free_port();
}

etcd_process::~etcd_process() {
  stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

cluster::etcd_options etcd_process::options() const {
  cluster::etcd_options o;
  o.at = {"127.0.0.1", client_port_};
  return o;
}

bool etcd_process::start() {
  auto client = "http://127.0.0.1:" + std::to_string(client_port_);
  auto peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args{
    "/usr/bin/etcd", "--name", "t1", "--data-dir", dir_ + "/data",
    "--listen-client-urls", client, "--advertise-client-urls", client,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    "--initial-cluster", "t1=" + peer};
  auto log = dir_ + "/etcd.log";
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  cluster::etcd_client probe(options());
  // Healthy after about a second here; give it up to ~20 s (400 tries).
  for (int i = 0; i < 400; ++i) {
    if (probe.healthy())
      return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  MESSAGE("etcd did not become healthy; its log:\n" << ss.str());
  return false;
}

void etcd_process::stop() {
  if (pid_ <= 0)
    return;
  kill(pid_, SIGTERM);
  int status = 0;
  // Up to ~15 s for a clean exit, then SIGKILL (our own child only).
  for (int i = 0; i < 300; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

fake_http_server::fake_http_server(std::vector<std::string> answers,
                                   bool hold_last)
  : answers_(std::move(answers)), hold_last_(hold_last) {
  listen_fd_ = loopback_listener(port_);
  thread_ = std::thread([this] { serve(); });
}

fake_http_server::~fake_http_server() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

cluster::etcd_options fake_http_server::options() const {
  cluster::etcd_options o;
  o.at = {"127.0.0.1", port_};
  o.call_deadline = std::chrono::milliseconds(500);
  o.watch_connect_deadline = std::chrono::milliseconds(500);
  o.watch_max_backoff = std::chrono::milliseconds(100);
  return o;
}

std::vector<std::string> fake_http_server::requests() {
  std::lock_guard<std::mutex> guard(mtx_);
  return requests_;
}

bool fake_http_server::wait_for_requests(size_t n) {
  std::unique_lock<std::mutex> lock(mtx_);
  return cv_.wait_for(lock, std::chrono::seconds(20),
                      [&] { return requests_.size() >= n; });
}

void fake_http_server::serve() {
  size_t i = 0; // connections accepted so far
  while (!stop_) {
    if (!readable(listen_fd_, 20))
      continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    // Read the request: headers, then Content-Length bytes of body.
    std::string req;
    char buf[4096];
    size_t want = std::string::npos;
    while (!stop_ && req.size() < want) {
      if (!readable(fd, 20))
        continue;
      auto n = ::read(fd, buf, sizeof buf);
      if (n <= 0)
        break;
      req.append(buf, static_cast<size_t>(n));
      if (auto end = req.find("\r\n\r\n");
          want == std::string::npos && end != std::string::npos) {
        size_t len = 0;
        if (auto cl = req.find("Content-Length: "); cl != std::string::npos)
          len = std::stoul(req.substr(cl + 16));
        want = end + 4 + len;
      }
    }
    {
      std::lock_guard<std::mutex> guard(mtx_);
      requests_.push_back(req);
    }
    cv_.notify_all();
    if (i < answers_.size())
      (void) !::write(fd, answers_[i].data(), answers_[i].size());
    if (hold_last_ && i + 1 >= answers_.size())
      while (!stop_)
        if (readable(fd, 20) && ::read(fd, buf, sizeof buf) <= 0)
          break;
    ::close(fd);
    ++i;
  }
}

} // namespace parley::e2e
