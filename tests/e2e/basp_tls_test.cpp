// Mutual TLS between nodes (issue 22, "Cluster security"): BASP over CAF
// 0.17.6's openssl module, set up by runtime/cluster/cluster_tls. Throwaway
// certificates from the openssl CLI: a cluster CA with two node
// certificates, and another CA with one. Actor systems in one process, on
// loopback only. Two nodes of the cluster CA do a request round trip in
// Parley's message types; a process without a certificate, a client with a
// certificate of the other CA, and a server with one, all get nothing
// through: the published actors count what reaches them.

#include <doctest/doctest.h>

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/cluster/cluster_tls.hpp"
#include "runtime/core/type_ids.hpp"

using namespace parley;
using namespace std::chrono_literals;
using parley::cluster::tls_files;

namespace {

namespace fs = std::filesystem;

/// A stand-in for a node's store reader that counts every read reaching it.
using counting_reader = caf::typed_actor<
  caf::replies_to<fetch_atom, conv_reads>::with<conv_answers>,
  caf::replies_to<caf::get_atom>::with<uint64_t>>;

struct reader_state {
  uint64_t reads = 0;
};

counting_reader::behavior_type
reader_impl(counting_reader::stateful_pointer<reader_state> self) {
  return {
    [=](fetch_atom, const conv_reads& r) {
      ++self->state.reads;
      conv_answers a;
      a.partition = r.partition;
      for (auto& q : r.queries) {
        conv_answer x;
        x.entry.conversation = q.conv;
        x.entry.head = q.conv * 10 + 1;
        a.answers.push_back(x);
      }
      return a;
    },
    [=](caf::get_atom) { return self->state.reads; },
  };
}

/// Reads that reached `r` (asked locally, in its own system).
uint64_t reads_at(caf::actor_system& sys, const counting_reader& r) {
  caf::scoped_actor self{sys};
  uint64_t n = ~uint64_t{0};
  self->request(r, 10s, caf::get_atom::value)
    .receive([&](uint64_t x) { n = x; },
             [&](caf::error& e) { FAIL("count: " << caf::to_string(e)); });
  return n;
}

/// A temp dir of PEM files made with the openssl CLI: ca.pem (the cluster
/// CA) signs n1 and n2; other-ca.pem signs rogue. Removed at the end.
struct cert_dir {
  fs::path dir;

  cert_dir() {
    char tmpl[] = "/tmp/parley-tls-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    make_ca("ca", "parley-test-cluster-ca");
    make_ca("other-ca", "parley-test-other-ca");
    make_cert("n1", "ca");
    make_cert("n2", "ca");
    make_cert("rogue", "other-ca");
  }

  ~cert_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string pem(const std::string& name) const {
    return (dir / (name + ".pem")).string();
  }
  std::string key(const std::string& name) const {
    return (dir / (name + ".key")).string();
  }
  tls_files node(const std::string& name, const std::string& ca = "ca") {
    return tls_files{pem(name), key(name), pem(ca)};
  }

  void run(const std::string& args) {
    auto cmd = "cd '" + dir.string() + "' && openssl " + args
               + " >>openssl.log 2>&1";
    INFO(cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  void make_ca(const std::string& name, const std::string& cn) {
    run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout "
        + name + ".key -out " + name + ".pem -days 2 -subj /CN=" + cn);
  }
  void make_cert(const std::string& name, const std::string& ca) {
    run("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
        + name + ".key -out " + name + ".csr -subj /CN=parley-" + name);
    run("x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca
        + ".key -CAcreateserial -days 2 -out " + name + ".pem");
  }
};

struct node_config : caf::actor_system_config {
  node_config() {
    add_message_types<caf::id_block::parley>();
    set("scheduler.max-threads", 2);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

/// A config through cluster_tls (`tls` empty: plain BASP).
std::unique_ptr<node_config> configured(const tls_files& tls) {
  auto cfg = std::make_unique<node_config>();
  REQUIRE(cluster::configure_middleman(*cfg, tls) == "");
  return cfg;
}

/// A config set up by hand, as an intruder would: any certificate, any
/// trusted CA (cluster_tls would refuse a certificate its CA did not sign).
std::unique_ptr<node_config> by_hand(const tls_files& tls) {
  auto cfg = std::make_unique<node_config>();
  cfg->load<caf::io::middleman>();
  cfg->load<caf::openssl::manager>();
  cfg->openssl_certificate = tls.cert;
  cfg->openssl_key = tls.key;
  cfg->openssl_cafile = tls.ca;
  return cfg;
}

conv_reads some_reads() {
  conv_reads r;
  r.partition = 17;
  for (conversation_id c : {3, 5, 8}) {
    conv_query q;
    q.conv = c;
    q.kind = conv_read_probe;
    q.user = 42;
    r.queries.push_back(q);
  }
  return r;
}

/// One fetch round trip from `sys` to `remote`; true on the right answer.
bool round_trip(caf::actor_system& sys, const caf::actor& remote) {
  caf::scoped_actor self{sys};
  bool ok = false;
  self->request(remote, 10s, fetch_atom::value, some_reads())
    .receive(
      [&](conv_answers& a) {
        ok = a.partition == 17u && a.answers.size() == 3
             && a.answers[2].entry.conversation == 8u
             && a.answers[2].entry.head == 81u;
      },
      [&](caf::error& err) { MESSAGE("no answer: " << caf::to_string(err)); });
  return ok;
}

} // namespace

TEST_CASE("basp tls: two nodes with certificates of the cluster CA talk in "
          "Parley's message types over mutual TLS") {
  cert_dir certs;
  auto t1 = certs.node("n1");
  auto t2 = certs.node("n2");
  auto cfg1 = configured(t1);
  auto cfg2 = configured(t2);
  caf::actor_system sys1{*cfg1};
  caf::actor_system sys2{*cfg2};
  REQUIRE(sys1.has_openssl_manager());
  auto reader = sys1.spawn(reader_impl);
  auto port = cluster::publish_peer(sys1, caf::actor_cast<caf::actor>(reader),
                                    "127.0.0.1", 0, t1);
  REQUIRE(port);
  auto remote = cluster::connect_peer(sys2, "127.0.0.1", *port, t2);
  REQUIRE_MESSAGE(remote, caf::to_string(remote.error()));
  CHECK(remote->node() == sys1.node());
  CHECK(round_trip(sys2, *remote));
  CHECK(round_trip(sys2, *remote));
  CHECK(reads_at(sys1, reader) == 2);
  // The middleman's unpublish closes a port the openssl module opened
  // (both belong to the one BASP broker): no new node connects there. (A
  // fresh system: a middleman answers a host:port it already reached from
  // its cache while that actor lives.)
  CHECK(sys1.middleman().unpublish(reader, *port));
  auto cfg3 = configured(t2);
  caf::actor_system sys3{*cfg3};
  CHECK_FALSE(cluster::connect_peer(sys3, "127.0.0.1", *port, t2, 5s));
  caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
}

TEST_CASE("basp tls: a process without a certificate, or with one of another "
          "CA, gets no actor message to a TLS node") {
  cert_dir certs;
  auto t1 = certs.node("n1");
  auto cfg1 = configured(t1);
  caf::actor_system sys1{*cfg1};
  auto reader = sys1.spawn(reader_impl);
  auto port = cluster::publish_peer(sys1, caf::actor_cast<caf::actor>(reader),
                                    "127.0.0.1", 0, t1);
  REQUIRE(port);

  SUBCASE("plain BASP, no certificate") {
    auto cfg = configured(tls_files{});
    caf::actor_system plain{*cfg};
    // The TLS side waits for a ClientHello, the plain side for BASP's
    // server handshake: without the timeout this would never end.
    auto r = cluster::connect_peer(plain, "127.0.0.1", *port, tls_files{},
                                   3s);
    CHECK_FALSE(r);
    if (!r)
      MESSAGE("plain connect: " << caf::to_string(r.error()));
    else
      CHECK_FALSE(round_trip(plain, *r));
  }
  SUBCASE("a certificate of another CA, trusting the cluster CA (only the "
          "server's check of the client can refuse it)") {
    auto cfg = by_hand(tls_files{certs.pem("rogue"), certs.key("rogue"),
                                 certs.pem("ca")});
    caf::actor_system rogue{*cfg};
    auto r = cluster::connect_peer(rogue, "127.0.0.1", *port,
                                   certs.node("rogue", "ca"), 5s);
    CHECK_FALSE(r);
    if (!r)
      MESSAGE("rogue client connect: " << caf::to_string(r.error()));
    else
      CHECK_FALSE(round_trip(rogue, *r));
  }
  // Nothing reached the actor, which a cluster node still reaches.
  CHECK(reads_at(sys1, reader) == 0);
  auto cfg2 = configured(certs.node("n2"));
  caf::actor_system sys2{*cfg2};
  auto remote = cluster::connect_peer(sys2, "127.0.0.1", *port,
                                      certs.node("n2"));
  REQUIRE_MESSAGE(remote, caf::to_string(remote.error()));
  CHECK(round_trip(sys2, *remote));
  CHECK(reads_at(sys1, reader) == 1);
  caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
}

TEST_CASE("basp tls: a cluster node refuses a server whose certificate "
          "another CA signed") {
  cert_dir certs;
  // The impostor trusts the cluster CA, so only the client's check of the
  // server's certificate can refuse it.
  auto cfg_rogue = by_hand(tls_files{certs.pem("rogue"), certs.key("rogue"),
                                     certs.pem("ca")});
  caf::actor_system rogue{*cfg_rogue};
  auto impostor = rogue.spawn(reader_impl);
  auto port = caf::openssl::publish(impostor, 0, "127.0.0.1");
  REQUIRE(port);
  auto t1 = certs.node("n1");
  auto cfg1 = configured(t1);
  caf::actor_system sys1{*cfg1};
  auto r = cluster::connect_peer(sys1, "127.0.0.1", *port, t1, 5s);
  CHECK_FALSE(r);
  if (!r)
    MESSAGE("connect to impostor: " << caf::to_string(r.error()));
  else
    CHECK_FALSE(round_trip(sys1, *r));
  CHECK(reads_at(rogue, impostor) == 0);
  caf::anon_send_exit(impostor, caf::exit_reason::user_shutdown);
}

TEST_CASE("basp tls: credentials are checked before the actor system starts, "
          "and the cluster port never binds every interface") {
  cert_dir certs;
  CHECK(tls_files{}.validate() == "");
  CHECK_FALSE(tls_files{}.enabled());
  CHECK(certs.node("n1").validate() == "");
  CHECK(certs.node("n1").enabled());
  auto partial = tls_files{certs.pem("n1"), certs.key("n1"), ""};
  CHECK_FALSE(partial.enabled());
  CHECK(partial.validate().find("missing: --cluster.tls-ca")
        != std::string::npos);
  auto unreadable = certs.node("n1");
  unreadable.key = (certs.dir / "nope.key").string();
  CHECK(unreadable.validate().find("--cluster.tls-key: cannot read")
        != std::string::npos);
  auto mismatch = certs.node("n1");
  mismatch.key = certs.key("n2");
  CHECK(mismatch.validate().find("--cluster.tls-key") != std::string::npos);
  auto foreign = certs.node("rogue", "ca");
  CHECK(foreign.validate().find("does not verify") != std::string::npos);
  // A refused set changes nothing in the config: no openssl module.
  {
    node_config cfg;
    CHECK(cluster::configure_middleman(cfg, partial) != "");
    CHECK(cfg.openssl_certificate.empty());
  }

  CHECK(cluster::peer_host_allowed("127.0.0.1"));
  CHECK(cluster::peer_host_allowed("::1"));
  CHECK(cluster::peer_host_allowed("10.1.2.3"));
  CHECK(cluster::peer_host_allowed("172.31.0.1"));
  CHECK(cluster::peer_host_allowed("192.168.1.1"));
  CHECK(cluster::peer_host_allowed("fd00::1"));
  CHECK_FALSE(cluster::peer_host_allowed("0.0.0.0"));
  CHECK_FALSE(cluster::peer_host_allowed("::"));
  CHECK_FALSE(cluster::peer_host_allowed("172.32.0.1"));
  CHECK_FALSE(cluster::peer_host_allowed("8.8.8.8"));
  CHECK_FALSE(cluster::peer_host_allowed("2001:db8::1"));
  CHECK_FALSE(cluster::peer_host_allowed("example.com"));
  CHECK_FALSE(cluster::peer_host_allowed(""));

  auto t1 = certs.node("n1");
  auto cfg = configured(t1);
  caf::actor_system sys{*cfg};
  auto reader = caf::actor_cast<caf::actor>(sys.spawn(reader_impl));
  for (const char* host : {"0.0.0.0", "::", "8.8.8.8"}) {
    CAPTURE(host);
    CHECK_FALSE(cluster::publish_peer(sys, reader, host, 0, t1));
    CHECK_FALSE(cluster::publish_peer(sys, reader, host, 0, tls_files{}));
    CHECK_FALSE(cluster::connect_peer(sys, host, 1, t1, 1s));
  }
  caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
}
