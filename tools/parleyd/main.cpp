// parleyd: a Parley node. Opens the LevelDB database under --data, starts the
// node's actors and runs until SIGTERM or SIGINT, then stops cleanly:
// in-flight commits finish, then it exits 0.

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <variant>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>

#include <caf/io/middleman.hpp>

#include "runtime/accounts/credentials.hpp"
#include "runtime/admin/admin_tokens.hpp"
#include "runtime/admin/handlers.hpp"
#include "runtime/admin/jobs.hpp"
#include "runtime/admin_listener.hpp"
#include "runtime/cluster/cluster_tls.hpp"
#include "runtime/cluster_member.hpp"
#include "runtime/config.hpp"
#include "runtime/node.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout_migration.hpp"
#include "runtime/store/leveldb_backend.hpp"

namespace {

const char* usage = R"(parleyd - Parley chat server node

Usage: parleyd [--data DIR] [--config FILE] [--log-level LEVEL] [CAF options]

  --data DIR          database directory (default ./data)
  --listen HOST:PORT  HTTP and WebSocket address (default 127.0.0.1:8080;
                      port 0 picks a free port, logged at start)
  --config FILE       config file, INI format with a [parley] section
  --log-level LEVEL   trace|debug|info|warn|error|critical|off (default info)
  --partitions N      partitions of the deployment, 1-65536 (default 64);
                      fixed at the first start on --data and kept there:
                      another number later refuses to start
  --rebuild-inbox U   recompute the inbox projection of user U (a name or
                      an id) or of all users from the message log, write it
                      and exit; run it with the node stopped

Admin port (parleyctl; on when an admin token is configured):
  --admin-token-add NAME    add a random admin token named NAME to the
                            tokens file (DATA_DIR/admin-tokens), print it
                            once and exit
  --parley.admin-listen H:P the admin port (default 127.0.0.1:8090;
                            loopback or private addresses only)
  --parley.admin-tokens F   the tokens file (lines NAME HASH, mode 0600)

Cluster (all nodes share etcd; without --cluster.etcd: one node, no etcd):
  --cluster.etcd URL        etcd's client URL, e.g. http://127.0.0.1:2379
  --cluster.node N          this node's id, 1-65535, its own in the cluster
  --cluster.listen H:P      where other nodes reach this one (CAF's BASP);
                            loopback or private only (default 127.0.0.1:0:
                            a free port, registered in etcd)
  --cluster.name NAME       etcd key prefix /parley/NAME/ (default parley)
  --cluster.initial-nodes L owners of the first partition map, e.g. 1,2,3
                            (read by whichever node creates the map)
  --cluster.lease-ttl-s S   the node's etcd lease (default 5); writes for its
                            partitions stop --cluster.fence-margin-ms
                            (default 1500) before it could lapse unrenewed
  --cluster.tls-cert F --cluster.tls-key F --cluster.tls-ca F
                            mutual TLS between nodes (all three or none)

  --help              this text and every option with its default
  --dump-config       print the effective configuration and exit

Every option (listed by --long-help) may also be given as --parley.NAME=VALUE
or in the config file.
Stops cleanly on SIGTERM or SIGINT.
)";

/// --rebuild-inbox: recomputes entries straight into the database (the
/// node is not running: LevelDB's lock guarantees it). Returns the exit code.
int rebuild_inboxes(parley::kv_backend& kv, const std::string& who) {
  using namespace parley;
  std::vector<user_id> users;
  if (who == "all") {
    auto all = store::users_with_conversations(kv);
    if (!all) {
      spdlog::critical("cannot list users error=\"{}\"", to_string(all.error()));
      return 1;
    }
    users = *all;
  } else if (!who.empty()
             && who.find_first_not_of("0123456789") == std::string::npos) {
    users.push_back(std::stoull(who));
  } else {
    auto rec = kv.get(keys::account(who));
    store::v1::AccountRecord acc;
    if (!rec || !*rec || !acc.ParseFromString(**rec)) {
      spdlog::critical("no such user name={}", who);
      return 1;
    }
    users.push_back(acc.user_id());
  }
  uint64_t entries = 0;
  for (auto user : users) {
    auto convs = store::user_conversations(kv, user);
    if (!convs) {
      spdlog::critical("cannot list conversations user={} error=\"{}\"", user,
                       to_string(convs.error()));
      return 1;
    }
    write_batch batch;
    for (auto conv : *convs) {
      auto e = store::compute_inbox_entry(kv, user, conv);
      if (!e) {
        spdlog::critical("cannot compute inbox entry user={} conversation={} "
                         "error=\"{}\"",
                         user, conv, to_string(e.error()));
        return 1;
      }
      store::add_inbox_entry(batch, user, *e);
      ++entries;
    }
    if (auto err = kv.write(batch, true)) {
      spdlog::critical("cannot write inbox user={} error=\"{}\"", user,
                       to_string(err));
      return 1;
    }
  }
  spdlog::info("inbox rebuilt users={} entries={}", users.size(), entries);
  return 0;
}

/// The admin tokens the node accepts: --parley.admin-token-hash (named
/// "operator") and the tokens file; null after logging why it is refused.
std::shared_ptr<parley::admin::token_store>
open_tokens(const parley::node_config& cfg) {
  using namespace parley;
  std::vector<admin::admin_token> fixed;
  if (!cfg.admin_token_hash.empty())
    fixed.push_back(
      {"operator", credentials::from_hex32(cfg.admin_token_hash)});
  auto got = admin::token_store::open(std::move(fixed),
                                      cfg.admin_tokens_file(),
                                      cfg.admin_tokens.empty());
  if (auto* err = std::get_if<std::string>(&got)) {
    spdlog::critical("{}", *err);
    return nullptr;
  }
  return std::get<0>(got);
}

/// --admin-token-add NAME: the token alone on stdout. Returns the exit code.
int add_admin_token(const parley::node_config& cfg) {
  auto file = cfg.admin_tokens_file();
  auto added = parley::admin::add_token(file, cfg.admin_token_add);
  if (!added.error.empty()) {
    std::cerr << "parleyd: " << added.error << '\n';
    return 1;
  }
  std::cout << added.token << std::endl;
  std::cerr << "parleyd: admin token " << cfg.admin_token_add
            << " added to " << file
            << " (shown once, stored hashed; a node whose admin port is "
               "open accepts it at once, else restart the node)\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  using namespace parley;
  const auto started = std::chrono::steady_clock::now();
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
  if (!cfg.admin_token_add.empty())
    return add_admin_token(cfg);
  auto kv = leveldb_backend::open(cfg.data_dir, cfg.leveldb());
  if (!kv) {
    spdlog::critical("cannot open database data={} error=\"{}\"", cfg.data_dir,
                     cfg.render(kv.error()));
    return 1;
  }
  if (!cfg.rebuild_inbox.empty()) {
    parley::store::migration_options migrate;
    migrate.log = [](const std::string& line) { spdlog::info("{}", line); };
    if (auto layout = parley::store::settle_layout(**kv, migrate); !layout) {
      spdlog::critical("cannot settle the key layout error=\"{}\"",
                       cfg.render(layout.error()));
      return 1;
    }
    return rebuild_inboxes(**kv, cfg.rebuild_inbox);
  }
  auto tokens = open_tokens(cfg);
  if (!tokens)
    return 1;
  auto cluster_opts = cfg.cluster();
  if (cluster_opts.enabled()) {
    // CAF's distribution, only for a cluster; automatic connections stay
    // off (on, they would open a port on every interface). Heartbeats let
    // a node see a peer that stopped answering.
    auto bad = cluster::configure_middleman(
      cfg, {cluster_opts.tls_cert, cluster_opts.tls_key, cluster_opts.tls_ca});
    if (!bad.empty()) {
      std::cerr << "parleyd: " << bad << '\n';
      return 2;
    }
    cfg.set("middleman.heartbeat-interval",
            caf::timespan{std::chrono::seconds(1)});
  }
  int exit_code = 0;
  // Outlive the actor system: admin handlers' actors may still hold them.
  admin::job_board jobs;
  admin::env admin_env;
  {
    caf::actor_system sys{cfg};
    std::unique_ptr<cluster_member> member;
    if (cluster_opts.enabled()) {
      member = std::make_unique<cluster_member>(sys, cluster_opts);
      if (auto err = member->join(static_cast<uint32_t>(cfg.partitions));
          !err.empty()) {
        spdlog::critical("cannot join the cluster: {}", err);
        member->leave();
        return 1;
      }
    }
    node_options opts;
    auto kv_store = std::shared_ptr<kv_backend>(*kv);
    opts.kv = kv_store;
    opts.conversation = cfg.conversation();
    opts.writer = cfg.writer();
    opts.accounts = cfg.accounts();
    opts.devices = cfg.devices();
    opts.fanout = cfg.fanout();
    opts.sync_recent = cfg.sync_recent;
    opts.partitions = static_cast<uint32_t>(cfg.partitions);
    opts.inbox_flush_delay = std::chrono::milliseconds(cfg.inbox_delay_ms);
    opts.inbox_batch_delay = std::chrono::milliseconds(cfg.inbox_batch_ms);
    opts.gateway = cfg.gateway();
    if (member) {
      opts.self = cluster_opts.node;
      opts.map = member->map();
      opts.partitions = static_cast<uint32_t>(opts.map->partitions());
      opts.writer.lease_deadline = member->lease_deadline();
    }
    node n{sys, std::move(opts)};
    if (member)
      n.report_cluster({[m = member.get()] { return m->health_fields(); },
                        [m = member.get()] { return m->metrics(); }});
    if (auto err = n.start(); !err.empty()) {
      spdlog::critical("cannot start: {}", err);
      n.stop();
      if (member)
        member->leave();
      return 1;
    }
    if (member)
      member->attach(n, kv_store);
    admin_env.sys = &sys;
    admin_env.node = &n;
    admin_env.member = member.get();
    admin_env.kv = kv_store.get();
    admin_env.jobs = &jobs;
    admin_env.started = started;
    admin_env.version = PARLEY_VERSION;
    std::unique_ptr<admin_listener> admin;
    if (auto count = tokens->size(); count > 0) {
      admin::handler_table table;
      admin::add_all_handlers(table, admin_env);
      auto at = cluster::parse_host_port(cfg.admin_listen); // validated
      admin = std::make_unique<admin_listener>(at->host, at->port, tokens,
                                               std::move(table));
      if (auto err = admin->start(); !err.empty()) {
        spdlog::critical("cannot open the admin port {}: {}",
                         cfg.admin_listen, err);
        admin.reset();
        n.stop();
        if (member)
          member->leave();
        return 1;
      }
      spdlog::info("admin listening address={} port={} tokens={}", at->host,
                   admin->port(), count);
    } else {
      spdlog::info("admin port off: no admin token (add one: parleyd --data "
                   "{} --admin-token-add NAME, then restart)",
                   cfg.data_dir);
    }
    spdlog::info("node started data={} port={} pid={} workers={}",
                 cfg.data_dir, n.port(), ::getpid(),
                 sys.scheduler().num_workers());
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("stopping signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (admin)
      admin->stop();
    n.stop();
    if (member)
      member->leave();
  }
  spdlog::info("stopped exit_code={}", exit_code);
  return exit_code;
}
