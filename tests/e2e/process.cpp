#include "process.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <regex>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace parley::e2e {

child::child(const std::string& exe, const std::vector<std::string>& args) {
  int fds[2];
  // Close-on-exec: a later child must not hold this one's pipe open.
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  fd_ = fds[0];
}

child::~child() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
  if (fd_ >= 0)
    close(fd_);
}

bool child::read_line(std::string& line, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  bool polled = false;
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      lines_.push_back(line);
      return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    // A timeout of 0 still takes what is there, once.
    if (fd_ < 0 || (left <= 0 && polled))
      return false;
    polled = true;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0))) <= 0)
      return false;
    char chunk[4096];
    auto n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) {
      close(fd_);
      fd_ = -1;
      if (!buf_.empty()) { // last line without '\n'
        line = buf_;
        buf_.clear();
        lines_.push_back(line);
        return true;
      }
      return false;
    }
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

bool child::wait_for_line(const std::string& needle, int timeout_ms) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0 || !read_line(line, static_cast<int>(left)))
      return false;
    if (line.find(needle) != std::string::npos)
      return true;
  }
}

void child::signal(int sig) {
  if (!reaped_ && pid_ > 0)
    kill(pid_, sig);
}

int child::wait(int timeout_ms) {
  if (reaped_)
    return status_;
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  std::string ignored;
  for (;;) {
    // Drain output so the child never blocks on a full pipe.
    while (fd_ >= 0 && read_line(ignored, 0)) {
    }
    auto r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      while (fd_ >= 0 && read_line(ignored, 100)) {
      }
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return -1;
    // Until the next output or a few milliseconds, then look again.
    if (fd_ >= 0) {
      pollfd p{fd_, POLLIN, 0};
      poll(&p, 1, 5);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

uint16_t started_port(child& c, int timeout_ms) {
  static const std::regex started("node started .*port=(\\d+)");
  std::string line;
  std::smatch m;
  while (c.read_line(line, timeout_ms))
    if (std::regex_search(line, m, started))
      return static_cast<uint16_t>(std::stoi(m[1].str()));
  for (auto& l : c.lines())
    MESSAGE(l);
  return 0;
}

} // namespace parley::e2e
