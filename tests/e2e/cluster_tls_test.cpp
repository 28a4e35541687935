// Issue 22, mutual TLS at the level of real parleyd processes: nodes 1 and
// 2 run with --cluster.tls-cert/-key/-ca (a throwaway CA and node
// certificates from the openssl CLI), node 3 with none (plain BASP, same
// etcd, same cluster name). Of each pair the lower node dials, so 1 and 2
// dial node 3 over TLS and 1 dials 2. Nodes 1 and 2 must become peers with
// live leases; node 3 must be in neither's peers and have none itself,
// and stay so for a bounded number of polling rounds; a registration that
// node 1 must forward to node 3 gets a retryable UNAVAILABLE. Printed, not
// asserted: the CPU time of each parleyd over a quiet window (CAF 0.17.6's
// openssl module spins while a TLS handshake stalls, actor-framework issue
// 1060) and how often the 1-2 link dropped (a control with all three nodes
// on TLS asserts it never does).

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "cluster_fixture.hpp"
#include "ws_client.hpp"

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
          "TLS, a node without it joins neither and has no peers") {
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

  // Actor messages: a registration through node 1 goes to the owner of the
  // name's partition. Owned by node 1 or 2 it is created (201); owned by
  // node 3 it gets a retryable UNAVAILABLE (503): node 1 has no link to
  // node 3. Node 3 itself creates such a name (its own partition).
  int created = 0;
  std::string refused; // a name node 1 could not forward to node 3
  for (int i = 0; i < 12 && (created == 0 || refused.empty()); ++i) {
    auto name = "tls" + std::to_string(i);
    auto r = http_call(c.port(1), "POST", "/v1/accounts",
                       R"({"username":")" + name
                         + R"(","password":"correct horse"})");
    MESSAGE("register " << name << " through node 1: " << r.status << " "
                        << r.body);
    if (r.status == 201) {
      ++created;
      continue;
    }
    CHECK(r.status == 503);
    CHECK(r.body.find("CODE_UNAVAILABLE") != std::string::npos);
    CHECK(r.body.find("\"retryable\":true") != std::string::npos);
    if (r.body.find("owned by node 3") != std::string::npos)
      refused = name;
  }
  CHECK(created > 0);
  REQUIRE_FALSE(refused.empty());
  auto direct = http_call(c.port(3), "POST", "/v1/accounts",
                          R"({"username":")" + refused
                            + R"(","password":"correct horse"})");
  CHECK_MESSAGE(direct.status == 201, "register " << refused
                                                  << " through node 3: "
                                                  << direct.body);

  // Printed, not asserted (it does not happen in every run): with the
  // plain node in the map, a failed TLS dial to it sometimes also ends
  // the 1-2 TLS link (both log "peer node=N gone" and reconnect ~10 ms
  // later). The all-TLS control below asserts that link never drops.
  MESSAGE("1-2 link drops logged during this test: node 1 "
          << drops(c.at(1)) << ", node 2 " << drops(c.at(2)));
}

// Drops of the 1-2 link (logged "peer node=N gone") since the nodes
// started, polled until the first one or until 5 s after the cluster
// formed.
static void check_link_1_2(test_cluster& c) {
  auto start = std::chrono::steady_clock::now();
  int d1 = 0, d2 = 0;
  while (std::chrono::steady_clock::now() < start + 5s) {
    d1 = drops(c.at(1));
    d2 = drops(c.at(2));
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

// The control of the drops printed above: with every node on TLS the
// 1-2 link does not drop.
TEST_CASE("cluster tls: three nodes with the cluster certificate keep their "
          "links (control)") {
  tls_certs certs;
  cluster_options o;
  for (node_id n = 1; n <= 3; ++n)
    o.node_extra[n] = certs.flags("n" + std::to_string(n));
  test_cluster c(o);
  check_link_1_2(c);
}
