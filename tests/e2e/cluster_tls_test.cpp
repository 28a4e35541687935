// Issue 22, mutual TLS at the level of real parleyd processes: nodes 1 and
// 2 run with --cluster.tls-cert/-key/-ca (a throwaway CA and node
// certificates from the openssl CLI), node 3 with none (plain BASP, same
// etcd, same cluster name). Of each pair the lower node dials, so 1 and 2
// dial node 3 over TLS and 1 dials 2. Nodes 1 and 2 must become peers with
// live leases; node 3 must be in neither's peers and have none itself,
// and stay so for a bounded number of polling rounds. The CPU time of each
// parleyd over a quiet window is printed (CAF 0.17.6's openssl module
// spins while a TLS handshake stalls, actor-framework issue 1060), not
// asserted.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "cluster_fixture.hpp"

using namespace parley;
using namespace parley::e2e;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

/// A temp dir with ca.pem (a throwaway cluster CA) signing n1, n2, n3,
/// made with the openssl CLI; removed at the end.
struct tls_certs {
  fs::path dir;

  tls_certs() {
    char tmpl[] = "/tmp/parley-ctls-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj /CN=parley-test-ca");
    for (auto n : {"n1", "n2", "n3"}) {
      std::string s = n;
      run("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
          "-keyout " + s + ".key -out " + s + ".csr -subj /CN=parley-" + s);
      run("x509 -req -in " + s + ".csr -CA ca.pem -CAkey ca.key "
          "-CAcreateserial -days 2 -out " + s + ".pem");
    }
  }
  ~tls_certs() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void run(const std::string& args) {
    auto cmd = "cd '" + dir.string() + "' && openssl " + args
               + " >>openssl.log 2>&1";
    INFO(cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  /// The three TLS flags for node certificate `n`.
  std::vector<std::string> flags(const std::string& n) const {
    return {"--cluster.tls-cert=" + (dir / (n + ".pem")).string(),
            "--cluster.tls-key=" + (dir / (n + ".key")).string(),
            "--cluster.tls-ca=" + (dir / "ca.pem").string()};
  }
};

/// utime + stime of `pid` in clock ticks (/proc/PID/stat fields 14, 15).
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  auto close = all.rfind(')');
  if (close == std::string::npos)
    return -1;
  std::istringstream rest(all.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  // Fields after the command: 3 (state) ... 14 utime, 15 stime.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14)
      utime = std::stol(field);
    if (i == 15)
      stime = std::stol(field);
  }
  return utime + stime;
}

std::string peers_text(const node_health& h) {
  std::string out = "[";
  for (auto p : h.peers)
    out += (out.size() > 1 ? "," : "") + std::to_string(p);
  return out + "]";
}

/// How often a node's log says a peer link dropped.
int drops(const cluster_node& n) {
  auto log = n.log();
  int k = 0;
  for (auto at = log.find(" gone:"); at != std::string::npos;
       at = log.find(" gone:", at + 1))
    ++k;
  return k;
}

/// Nodes 1 and 2 with certificates of the CA, node 3 without: the
/// fixture waits until 1 and 2 are peers with live leases (REQUIREd).
cluster_options plain_third(const tls_certs& certs) {
  cluster_options o;
  o.node_extra[1] = certs.flags("n1");
  o.node_extra[2] = certs.flags("n2");
  o.ready_nodes = std::set<node_id>{1, 2}; // node 3 never sees all peers
  return o;
}

/// Polls node `n` until its lease is live (REQUIREd within 30 s).
void wait_live(test_cluster& c, node_id n) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  node_health h;
  while ((h = c.health(n)).lease != "live"
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  REQUIRE_MESSAGE(h.lease == "live", "node " << n << " /healthz: " << h.body);
}

} // namespace

TEST_CASE("cluster tls: nodes with the cluster certificate peer over mutual "
          "TLS; a node without it joins neither and has no peers") {
  tls_certs certs;
  test_cluster c(plain_third(certs)); // 1 and 2: peers, leases live
  wait_live(c, 3);
  // All three hold the same map (node 3 registered in etcd), so 1 and 2
  // do dial node 3, over TLS, and fail.
  CHECK(c.health(1).map_epoch == c.health(3).map_epoch);

  // Bounded rounds (3 s of polls): node 3 is in neither's peers and has
  // none; every lease stays live.
  int rounds = 0;
  auto window_end = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < window_end) {
    auto h1 = c.health(1), h2 = c.health(2), h3 = c.health(3);
    INFO("round " << rounds << " node 1: " << h1.body << "\nnode 2: "
                  << h2.body << "\nnode 3: " << h3.body);
    REQUIRE(h1.answered);
    REQUIRE(h2.answered);
    REQUIRE(h3.answered);
    CHECK(h1.lease == "live");
    CHECK(h2.lease == "live");
    CHECK(h3.lease == "live");
    CHECK(h1.peers.count(3) == 0);
    CHECK(h2.peers.count(3) == 0);
    CHECK(h3.peers.empty());
    ++rounds;
    std::this_thread::sleep_for(100ms);
  }
  MESSAGE("after " << rounds << " polling rounds over 3 s: node 1 peers "
                   << peers_text(c.health(1)) << ", node 2 peers "
                   << peers_text(c.health(2)) << ", node 3 peers "
                   << peers_text(c.health(3)));
  CHECK(rounds >= 3);
  CHECK(c.at(1).log().find("cannot reach node=3") != std::string::npos);

  // CPU of each parleyd over a quiet 3 s window (printed, not asserted).
  long before[4], after[4];
  for (node_id n = 1; n <= 3; ++n)
    before[n] = cpu_ticks(c.at(n).pid());
  std::this_thread::sleep_for(3s);
  for (node_id n = 1; n <= 3; ++n)
    after[n] = cpu_ticks(c.at(n).pid());
  auto hz = sysconf(_SC_CLK_TCK);
  for (node_id n = 1; n <= 3; ++n)
    MESSAGE("node " << n << std::string(n < 3 ? " (tls)" : " (plain)")
                    << " pid " << c.at(n).pid() << " cpu ticks before "
                    << before[n] << " after " << after[n] << " = "
                    << (after[n] - before[n]) * 1000 / hz
                    << " ms of CPU in 3 s");
}

// Drops of the 1-2 link (logged "peer node=N gone") while 5 s pass after
// the cluster formed, polled until the first drop (or the bound); the
// same with node 3 also on TLS is the control.
static void check_link_1_2(test_cluster& c) {
  int before1 = drops(c.at(1)), before2 = drops(c.at(2));
  auto start = std::chrono::steady_clock::now();
  int d1 = 0, d2 = 0;
  while (std::chrono::steady_clock::now() < start + 5s) {
    d1 = drops(c.at(1)) - before1;
    d2 = drops(c.at(2)) - before2;
    if (d1 + d2 > 0)
      break;
    std::this_thread::sleep_for(50ms);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - start)
              .count();
  MESSAGE("peer drops logged after " << ms << " ms: node 1 " << d1
                                     << ", node 2 " << d2
                                     << "; node 1 log tail:\n"
                                     << log_tail(c.at(1).log(), 8));
  CHECK(d1 == 0);
  CHECK(d2 == 0);
}

// KNOWN BUG (found by this test, session 19): with a plain node in the
// map, every failed TLS dial to it (cluster_peers redials each pass, about
// once a second) also ends the TLS nodes' BASP link to each other (both
// log "peer node=N gone", then reconnect ~10 ms later; their partitions
// answer UNAVAILABLE meanwhile). The control below, all nodes on TLS,
// keeps its links. should_fail: this case turns red once that is fixed;
// then drop the decorator.
TEST_CASE("cluster tls: a node without the certificate does not break the "
          "TLS nodes' link (known bug)"
          * doctest::should_fail()) {
  tls_certs certs;
  test_cluster c(plain_third(certs));
  wait_live(c, 3);
  check_link_1_2(c);
}

TEST_CASE("cluster tls: three nodes with the cluster certificate keep their "
          "links (control)") {
  tls_certs certs;
  cluster_options o;
  for (node_id n = 1; n <= 3; ++n)
    o.node_extra[n] = certs.flags("n" + std::to_string(n));
  test_cluster c(o);
  check_link_1_2(c);
}
