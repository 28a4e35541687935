// basp-tls-cpu: what mutual TLS costs the cluster's data plane (issue 22),
// and whether Debian's CAF 0.17.6 openssl module spins (actor-framework
// issue 1060, fixed upstream after 0.17.6: a TLS write that wants a read
// left the socket in the write set, so poll() returned at once, forever).
//
// Two actor systems in this process, on 127.0.0.1, set up by
// runtime/cluster/cluster_tls exactly as parleyd's nodes are. For each
// mode (TLS off, on; alternating --repeat times) it reports the process's
// CPU time (getrusage: user + system, both systems together) and wall time
// for --rounds request round trips of a Parley message (conv_reads ->
// conv_answers) with --window requests in flight, stopping early at
// --max-seconds; then CPU while idle for --idle-seconds in three states:
//   idle       the nodes' connection open, no traffic
//   silent     plus a raw TCP connection to the published port that never
//              sends a byte (a port scan, a plain client, a stuck peer)
//   after      that raw connection closed again
// and the round trips (a quarter of --rounds) while such a silent
// connection is open (does a spinning I/O thread slow the data plane?),
// and CPU while dialing a node that accepts TCP but never answers (a
// frozen node: the kernel completes the connection) until the timeout,
// after it (the node still silent), and after its listener closed.
// --heartbeat-ms N turns on BASP heartbeats (connection timeout 3N): does
// that end a silent connection?
// 100% = one core busy. Certificates: a throwaway CA from the openssl CLI.
//
//   basp-tls-cpu [--rounds 20000] [--window 32] [--max-seconds 20]
//                [--idle-seconds 3] [--repeat 2] [--heartbeat-ms 0]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/cluster/cluster_tls.hpp"
#include "runtime/core/type_ids.hpp"

using namespace parley;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

struct options {
  uint64_t rounds = 20000;
  size_t window = 32;
  double max_seconds = 20;
  double idle_seconds = 3;
  int repeat = 2;
  int heartbeat_ms = 0; ///< middleman heartbeat; timeout 3x (0: CAF's off)
};

double cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  auto tv = [](timeval t) { return t.tv_sec + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

/// CPU use over `seconds` of doing nothing, in % of one core.
double idle_cpu_percent(double seconds) {
  auto c0 = cpu_seconds();
  auto t0 = clk::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  double wall = std::chrono::duration<double>(clk::now() - t0).count();
  return 100.0 * (cpu_seconds() - c0) / wall;
}

bool make_certs(const std::string& dir) {
  auto run = [&](const std::string& args) {
    auto cmd = "cd '" + dir + "' && openssl " + args + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  };
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-nodes ";
  if (!run("req -x509 " + ec + "-keyout ca.key -out ca.pem -days 2 "
           "-subj /CN=bench-ca"))
    return false;
  for (const char* n : {"n1", "n2"})
    if (!run("req " + ec + "-keyout " + std::string{n} + ".key -out " + n
             + ".csr -subj /CN=" + n)
        || !run("x509 -req -in " + std::string{n} + ".csr -CA ca.pem "
                + "-CAkey ca.key -CAcreateserial -days 2 -out " + n + ".pem"))
      return false;
  return true;
}

caf::behavior echo_reader() {
  return {
    [](fetch_atom, const conv_reads& r) {
      conv_answers a;
      a.partition = r.partition;
      for (auto& q : r.queries) {
        conv_answer x;
        x.entry.conversation = q.conv;
        a.answers.push_back(x);
      }
      return a;
    },
  };
}

struct driver_state {
  uint64_t sent = 0;
  uint64_t done = 0;
  uint64_t failed = 0;
  caf::response_promise rp;
};

/// On (ok_atom): keeps `window` requests in flight until `n` answered or
/// `deadline` passed; replies the number answered.
caf::behavior driver(caf::stateful_actor<driver_state>* self,
                     caf::actor target, uint64_t n, size_t window,
                     clk::time_point deadline) {
  conv_reads r;
  r.partition = 3;
  for (conversation_id c : {11, 12, 13}) {
    conv_query q;
    q.conv = c;
    q.kind = conv_read_probe;
    r.queries.push_back(q);
  }
  auto step = std::make_shared<std::function<void()>>();
  *step = [=] {
    auto& st = self->state;
    if (st.sent >= n || clk::now() >= deadline) {
      if (st.done + st.failed == st.sent && st.rp.pending())
        st.rp.deliver(st.done);
      return;
    }
    ++st.sent;
    self->request(target, 10s, fetch_atom::value, r)
      .then(
        [=](conv_answers&) {
          ++self->state.done;
          (*step)();
        },
        [=](caf::error&) {
          ++self->state.failed;
          (*step)();
        });
  };
  return {
    [=](caf::ok_atom) {
      self->state.rp = self->make_response_promise();
      for (size_t i = 0; i < window; ++i)
        (*step)();
      return self->state.rp;
    },
  };
}

struct node_config : caf::actor_system_config {
  node_config() {
    add_message_types<caf::id_block::parley>();
    set("scheduler.max-threads", 2);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

/// A raw TCP connection to 127.0.0.1:port that sends nothing; -1 on error.
int silent_connection(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    return -1;
  return fd;
}

struct batch {
  uint64_t done = 0;
  double wall = 0;
  double cpu = 0;
};

/// Round trips from `sys` to `remote` as the options say.
batch run_batch(caf::actor_system& sys, const caf::actor& remote,
                uint64_t rounds, const options& o) {
  auto deadline = clk::now()
                  + std::chrono::duration_cast<clk::duration>(
                    std::chrono::duration<double>(o.max_seconds));
  auto drv = sys.spawn(driver, remote, rounds, o.window, deadline);
  batch b;
  auto c0 = cpu_seconds();
  auto t0 = clk::now();
  caf::scoped_actor self{sys};
  auto bound = std::chrono::duration_cast<caf::timespan>(
    std::chrono::duration<double>(o.max_seconds + 15));
  self->request(drv, bound, caf::ok_atom::value)
    .receive([&](uint64_t n) { b.done = n; },
             [&](caf::error& e) {
               std::fprintf(stderr, "run: %s\n", to_string(e).c_str());
             });
  b.wall = std::chrono::duration<double>(clk::now() - t0).count();
  b.cpu = cpu_seconds() - c0;
  caf::anon_send_exit(drv, caf::exit_reason::user_shutdown);
  return b;
}

/// A listening socket on 127.0.0.1 that never accepts (the kernel completes
/// connections to it: a frozen or stuck node); returns fd and port.
std::pair<int, uint16_t> silent_listener() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0
      || listen(fd, 16) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return {-1, 0};
  return {fd, ntohs(a.sin_port)};
}

/// CPU (% of a core) while `sys` tries to connect to a node that never
/// answers, for `seconds` (connect_peer's timeout), and for `seconds` more
/// after that timeout with the node still silent.
std::pair<double, double> dial_silent_cpu(caf::actor_system& sys,
                                          const cluster::tls_files& t,
                                          double seconds) {
  auto [fd, port] = silent_listener();
  if (fd < 0)
    return {-1, -1};
  auto c0 = cpu_seconds();
  auto t0 = clk::now();
  auto r = cluster::connect_peer(
    sys, "127.0.0.1", port, t,
    std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double>(seconds)));
  double wall = std::chrono::duration<double>(clk::now() - t0).count();
  double cpu = cpu_seconds() - c0;
  double later = idle_cpu_percent(seconds);
  close(fd);
  return {r ? -1 : 100.0 * cpu / wall, later};
}

int run_mode(const options& o, const std::string& dir, bool tls) {
  cluster::tls_files t1, t2;
  if (tls) {
    t1 = {dir + "/n1.pem", dir + "/n1.key", dir + "/ca.pem"};
    t2 = {dir + "/n2.pem", dir + "/n2.key", dir + "/ca.pem"};
  }
  node_config cfg1, cfg2;
  if (o.heartbeat_ms > 0)
    for (auto cfg : {&cfg1, &cfg2}) {
      cfg->set("middleman.heartbeat-interval",
               caf::timespan{std::chrono::milliseconds(o.heartbeat_ms)});
      cfg->set("middleman.connection-timeout",
               caf::timespan{std::chrono::milliseconds(3 * o.heartbeat_ms)});
    }
  for (auto [cfg, t] : {std::pair{&cfg1, &t1}, std::pair{&cfg2, &t2}})
    if (auto msg = cluster::configure_middleman(*cfg, *t); !msg.empty()) {
      std::fprintf(stderr, "basp-tls-cpu: %s\n", msg.c_str());
      return 1;
    }
  caf::actor_system sys1{cfg1};
  caf::actor_system sys2{cfg2};
  auto reader = sys1.spawn(echo_reader);
  auto port = cluster::publish_peer(sys1, reader, "127.0.0.1", 0, t1);
  if (!port) {
    std::fprintf(stderr, "publish: %s\n", to_string(port.error()).c_str());
    return 1;
  }
  auto c0 = cpu_seconds();
  auto t0 = clk::now();
  auto remote = cluster::connect_peer(sys2, "127.0.0.1", *port, t2);
  double connect_ms
    = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
  double connect_cpu_ms = 1000 * (cpu_seconds() - c0);
  if (!remote) {
    std::fprintf(stderr, "connect: %s\n", to_string(remote.error()).c_str());
    return 1;
  }
  auto main_run = run_batch(sys2, *remote, o.rounds, o);
  auto done = main_run.done;
  auto wall = main_run.wall;
  auto cpu = main_run.cpu;
  double idle = idle_cpu_percent(o.idle_seconds);
  int fd = silent_connection(*port);
  double silent = fd >= 0 ? idle_cpu_percent(o.idle_seconds) : -1;
  auto loaded = run_batch(sys2, *remote, std::max<uint64_t>(o.rounds / 4, 1),
                          o);
  if (fd >= 0)
    close(fd);
  double after = idle_cpu_percent(o.idle_seconds);
  auto [dialing, after_dial] = dial_silent_cpu(sys2, t2, o.idle_seconds);
  double after_listener_closed = idle_cpu_percent(o.idle_seconds);
  std::printf("tls=%-3s round_trips=%llu window=%zu wall=%.2fs cpu=%.2fs "
              "rt/s=%.0f cpu_us/rt=%.1f connect=%.1fms(cpu %.1fms) "
              "idle_cpu=%.1f%% silent_conn_cpu=%.1f%% after_close_cpu=%.1f%% "
              "with_silent_conn: rt/s=%.0f cpu_us/rt=%.1f "
              "dialing_silent_node_cpu=%.1f%% after_dial_timeout_cpu=%.1f%% "
              "after_listener_closed_cpu=%.1f%%\n",
              tls ? "on" : "off", static_cast<unsigned long long>(done),
              o.window, wall, cpu, done / wall, done ? 1e6 * cpu / done : 0.0,
              connect_ms, connect_cpu_ms, idle, silent, after,
              loaded.done / loaded.wall,
              loaded.done ? 1e6 * loaded.cpu / loaded.done : 0.0, dialing,
              after_dial, after_listener_closed);
  std::fflush(stdout);
  caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
  return done == o.rounds ? 0 : 2;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    double v = std::atof(argv[i + 1]);
    if (k == "--rounds")
      o.rounds = static_cast<uint64_t>(v);
    else if (k == "--window")
      o.window = static_cast<size_t>(v);
    else if (k == "--max-seconds")
      o.max_seconds = v;
    else if (k == "--idle-seconds")
      o.idle_seconds = v;
    else if (k == "--heartbeat-ms")
      o.heartbeat_ms = static_cast<int>(v);
    else if (k == "--repeat")
      o.repeat = static_cast<int>(v);
    else {
      std::fprintf(stderr, "basp-tls-cpu: unknown option %s\n", k.c_str());
      return 1;
    }
  }
  char tmpl[] = "/tmp/basp-tls-cpu-XXXXXX";
  if (!mkdtemp(tmpl) || !make_certs(tmpl)) {
    std::fprintf(stderr, "basp-tls-cpu: cannot make certificates (openssl)\n");
    return 1;
  }
  int rc = 0;
  for (int i = 0; i < o.repeat; ++i)
    for (bool tls : {false, true})
      rc = std::max(rc, run_mode(o, tmpl, tls));
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return rc;
}
