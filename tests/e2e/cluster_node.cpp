#include "cluster_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace parley::e2e {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string read_file(const std::string& path, size_t from = 0) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<size_t>(n);
}

} // namespace

std::string log_tail(const std::string& text, int n) {
  auto at = text.size();
  for (int i = 0; i <= n && at != std::string::npos && at > 0; ++i)
    at = text.rfind('\n', at - 1);
  return at == std::string::npos ? text : text.substr(at + 1);
}

namespace {

/// Waits for `pid` to exit within `bound_ms`: its wait status, or -1.
int reap(pid_t pid, int bound_ms) {
  auto deadline = steady_clock::now() + milliseconds(bound_ms);
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return status;
    if (steady_clock::now() >= deadline)
      return -1;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

} // namespace

// -- cluster_node -------------------------------------------------------------

cluster_node::cluster_node(node_id id, std::string dir,
                           std::vector<std::string> args)
  : id(id), dir(dir), log_path(dir + ".log"), args_(std::move(args)) {
}

cluster_node::~cluster_node() {
  if (pid_ > 0)
    kill9();
}

bool cluster_node::start() {
  REQUIRE(pid_ <= 0);
  auto from = file_size(log_path);
  std::vector<std::string> argv_s{PARLEYD, "--data", dir, "--listen",
                                  "127.0.0.1:0"};
  argv_s.insert(argv_s.end(), args_.begin(), args_.end());
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = ::open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    // Nothing of the test process (client sockets, other nodes' files)
    // is inherited by the node.
    close_range(3, ~0u, 0);
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // The port of this process's "node started ... port=P pid=PID" line.
  std::regex started("node started .*port=(\\d+) pid=" + std::to_string(pid_)
                     + "\\b");
  auto deadline = steady_clock::now() + milliseconds(30000);
  while (steady_clock::now() < deadline) {
    std::smatch m;
    auto text = read_file(log_path, from);
    if (std::regex_search(text, m, started)) {
      port = static_cast<uint16_t>(std::stoi(m[1].str()));
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      MESSAGE("node " << id << " exited at start (status " << status
                      << "); its log:\n" << log_tail(read_file(log_path), 60));
      port = 0;
      return false;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  MESSAGE("node " << id << " logged no start line; its log:\n"
                  << log_tail(read_file(log_path), 60));
  kill9();
  return false;
}

void cluster_node::signal(int sig) {
  if (pid_ > 0)
    ::kill(pid_, sig);
}

void cluster_node::kill9() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  port = 0;
}

int cluster_node::terminate() {
  if (pid_ <= 0)
    return 0;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  auto status = reap(pid_, 20000);
  if (status == -1) {
    MESSAGE("node " << id << " did not exit 20 s after SIGTERM; log tail:\n"
                    << log_tail(log(), 40));
    kill9();
    return -1;
  }
  pid_ = -1;
  port = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string cluster_node::log() const {
  return read_file(log_path);
}

// -- lone_node ----------------------------------------------------------------

lone_node::lone_node(std::vector<std::string> extra) {
  char tmpl[] = "/tmp/parley-lone-XXXXXX";
  if (mkdtemp(tmpl) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  std::vector<std::string> args{"--parley.password-hash=min"};
  args.insert(args.end(), extra.begin(), extra.end());
  node_ = std::make_unique<cluster_node>(1, dir_ + "/node", std::move(args));
  REQUIRE(node_->start());
}

lone_node::~lone_node() {
  auto code = node_->terminate();
  CHECK_MESSAGE(code == 0, "parleyd exited " << code << " on SIGTERM; log:\n"
                                             << log_tail(node_->log(), 40));
  node_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

} // namespace parley::e2e
