#include "parleyctl_run.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace parley::e2e {

std::vector<std::string> admin_args() {
  return {"--parley.admin-listen=127.0.0.1:0",
          "--parley.admin-token-hash=" + admin_token_hash(test_admin_token)};
}

std::string fresh_home() {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path()
             / ("parleyctl-home-" + std::to_string(getpid()) + "-"
                + std::to_string(counter++));
  std::filesystem::create_directories(dir);
  return dir.string();
}

void exec_parleyctl(const std::vector<std::string>& args,
                    const std::vector<std::string>& envs) {
  std::vector<char*> argv{const_cast<char*>(PARLEYCTL)};
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : envs)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  execve(PARLEYCTL, argv.data(), envp.data());
  _exit(127);
}

ctl_result run_parleyctl(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         int timeout_ms) {
  auto home = fresh_home();
  std::vector<std::string> envs{"PATH=/usr/bin:/bin", "HOME=" + home,
                                "LANG=C.UTF-8"};
  for (auto& [k, v] : env)
    envs.push_back(k + "=" + v);
  int out[2], err[2];
  REQUIRE(pipe(out) == 0);
  REQUIRE(pipe(err) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    close(out[1]);
    close(err[1]);
    exec_parleyctl(args, envs);
  }
  close(out[1]);
  close(err[1]);
  ctl_result r;
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open = 2;
  bool killed = false;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) <= 0)
      continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[4096];
      auto n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0)
      close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(home);
  if (!killed && WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  return r;
}

ctl_result ctl(const node& n, const std::vector<std::string>& args,
               int timeout_ms) {
  REQUIRE(n.admin_port != 0);
  std::vector<std::string> all{"--node",
                               "127.0.0.1:" + std::to_string(n.admin_port),
                               "--token", test_admin_token};
  all.insert(all.end(), args.begin(), args.end());
  return run_parleyctl(all, {}, timeout_ms);
}

} // namespace parley::e2e
