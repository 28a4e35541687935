// parleyd: a Parley node. Opens the LevelDB database under --data, starts the
// node's actors and runs until SIGTERM or SIGINT, then stops cleanly:
// in-flight commits finish, then it exits 0.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>

#include "runtime/accounts/credentials.hpp"
#include "runtime/config.hpp"
#include "runtime/node.hpp"
#include "runtime/store/leveldb_backend.hpp"

namespace {

const char* usage = R"(parleyd - Parley chat server node

Usage: parleyd [--data DIR] [--config FILE] [--log-level LEVEL] [CAF options]

  --data DIR          database directory (default ./data)
  --listen HOST:PORT  HTTP and WebSocket address (default 127.0.0.1:8080;
                      port 0 picks a free port, logged at start)
  --config FILE       config file, INI format with a [parley] section
  --log-level LEVEL   trace|debug|info|warn|error|critical|off (default info)
  --help              this text and every option with its default
  --dump-config       print the effective configuration and exit

Every option (listed by --long-help) may also be given as --parley.NAME=VALUE
or in the config file.
Stops cleanly on SIGTERM or SIGINT.
)";

} // namespace

int main(int argc, char** argv) {
  using namespace parley;
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto args = normalize_args(argc, argv);
  for (auto& a : args)
    if (a == "--help" || a == "-h" || a == "-?")
      std::cout << usage << '\n';
  node_config cfg;
  if (auto err = cfg.parse(args)) {
    std::cerr << "parleyd: bad arguments: " << cfg.render(err)
              << "\n(try --help)\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  if (!cfg.remainder.empty()) {
    std::cerr << "parleyd: unknown argument: " << cfg.remainder.front()
              << "\n(try --help)\n";
    return 2;
  }
  if (auto bad = cfg.validate(); !bad.empty()) {
    std::cerr << "parleyd: " << bad << '\n';
    return 2;
  }
  auto level = spdlog::level::from_str(cfg.log_level);
  if (level == spdlog::level::off && cfg.log_level != "off") {
    std::cerr << "parleyd: unknown log level: " << cfg.log_level << '\n';
    return 2;
  }
  spdlog::set_level(level);
  spdlog::flush_on(spdlog::level::info); // lines reach pipes and files whole
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [parleyd] %v");

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data directory data={} error=\"{}\"", cfg.data_dir,
                     ec.message());
    return 1;
  }
  if (!credentials::init()) {
    spdlog::critical("libsodium failed to initialize");
    return 1;
  }
  auto kv = leveldb_backend::open(cfg.data_dir);
  if (!kv) {
    spdlog::critical("cannot open database data={} error=\"{}\"", cfg.data_dir,
                     cfg.render(kv.error()));
    return 1;
  }
  int exit_code = 0;
  {
    caf::actor_system sys{cfg};
    node_options opts;
    opts.kv = *kv;
    opts.conversation = cfg.conversation();
    opts.writer = cfg.writer();
    opts.accounts = cfg.accounts();
    opts.devices = cfg.devices();
    opts.gateway = cfg.gateway();
    node n{sys, std::move(opts)};
    if (auto err = n.start(); !err.empty()) {
      spdlog::critical("cannot start: {}", err);
      n.stop();
      return 1;
    }
    spdlog::info("node started data={} port={} pid={}", cfg.data_dir,
                 n.port(), ::getpid());
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("stopping signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    n.stop();
  }
  spdlog::info("stopped exit_code={}", exit_code);
  return exit_code;
}
