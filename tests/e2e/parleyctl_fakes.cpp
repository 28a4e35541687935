#include "parleyctl_fakes.hpp"
#include "parleyctl_run.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

namespace parley::e2e {

namespace {

int loopback_socket(uint16_t& port, bool listening) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  if (listening)
    REQUIRE(listen(fd, 16) == 0);
  socklen_t len = sizeof a;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port = ntohs(a.sin_port);
  return fd;
}

} // namespace

pty_session::pty_session(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env)
  : home(fresh_home()) {
  std::vector<std::string> envs{"PATH=/usr/bin:/bin", "HOME=" + home,
                                "TERM=xterm", "LANG=C.UTF-8"};
  for (auto& [k, v] : env)
    envs.push_back(k + "=" + v);
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 120;
  pid_ = forkpty(&fd_, nullptr, nullptr, &ws);
  REQUIRE(pid_ >= 0);
  if (pid_ == 0)
    exec_parleyctl(args, envs);
}

pty_session::~pty_session() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (fd_ >= 0)
    close(fd_);
  std::filesystem::remove_all(home);
}

void pty_session::type(const std::string& bytes) {
  REQUIRE(write(fd_, bytes.data(), bytes.size())
          == static_cast<ssize_t>(bytes.size()));
}

void pty_session::type_at_prompt(const std::string& bytes) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    termios t{};
    REQUIRE(tcgetattr(fd_, &t) == 0);
    if (!(t.c_lflag & ICANON))
      break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    REQUIRE(read_some(10));
  }
  type(bytes);
}

bool pty_session::read_some(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0)
    return true; // nothing yet
  char buf[4096];
  auto n = read(fd_, buf, sizeof buf);
  if (n <= 0)
    return false; // closed (EIO once parleyctl has exited)
  output.append(buf, static_cast<size_t>(n));
  return true;
}

bool pty_session::expect(const std::string& text, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto at = output.find(text, consumed_);
    if (at != std::string::npos) {
      consumed_ = at + text.size();
      return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0 || !read_some(static_cast<int>(left)))
      return output.find(text, consumed_) != std::string::npos;
  }
}

int pty_session::wait_exit(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      while (read_some(0) && output.size() < (1u << 20)) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0)
          break;
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0)
      return -1;
    // Keep draining the terminal, so parleyctl never blocks writing.
    if (!read_some(static_cast<int>(std::min<long>(left, 50)))) {
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
  }
}

dead_port::dead_port() {
  fd_ = loopback_socket(port, false);
}

dead_port::~dead_port() {
  close(fd_);
}

fake_admin::fake_admin(script answer) : answer_(std::move(answer)) {
  fd_ = loopback_socket(port, true);
  thread_ = std::thread([this] { serve(); });
}

fake_admin::~fake_admin() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

void fake_admin::serve() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0)
      continue;
    // Read the head, then Content-Length bytes of body.
    std::string in;
    size_t head_end = std::string::npos, need = 0;
    char buf[4096];
    while (true) {
      pollfd q{c, POLLIN, 0};
      if (poll(&q, 1, 5000) <= 0)
        break;
      auto n = read(c, buf, sizeof buf);
      if (n <= 0)
        break;
      in.append(buf, static_cast<size_t>(n));
      if (head_end == std::string::npos) {
        head_end = in.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          auto cl = in.find("Content-Length: ");
          if (cl != std::string::npos && cl < head_end)
            need = std::stoul(in.substr(cl + 16));
        }
      }
      if (head_end != std::string::npos && in.size() >= head_end + 4 + need)
        break;
    }
    if (head_end == std::string::npos) {
      close(c);
      continue;
    }
    auto line_end = in.find("\r\n");
    auto line = in.substr(0, line_end);
    auto sp1 = line.find(' '), sp2 = line.rfind(' ');
    std::string auth;
    auto a = in.find("Authorization: ");
    if (a != std::string::npos && a < head_end)
      auth = in.substr(a + 15, in.find("\r\n", a) - a - 15);
    auto r = answer_(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1),
                     in.substr(head_end + 4, need), auth);
    ++requests_;
    auto out = "HTTP/1.1 " + std::to_string(r.status)
               + " X\r\nContent-Type: application/json\r\nContent-Length: "
               + std::to_string(r.body.size())
               + "\r\nConnection: close\r\n\r\n" + r.body;
    size_t sent = 0;
    while (sent < out.size()) {
      auto n = send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0)
        break;
      sent += static_cast<size_t>(n);
    }
    close(c);
  }
}

} // namespace parley::e2e
