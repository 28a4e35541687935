// The cluster's settings and the values it keeps in etcd (issue 22):
// addresses the cluster port may bind, node lists, option checks, and the
// JSON of a node's registration and of the partition map, read back and
// refused when malformed (they come from outside the process).

#include <doctest/doctest.h>

#include <string>

#include "runtime/cluster/cluster_options.hpp"
#include "runtime/cluster_member_detail.hpp"

using namespace parley;
using namespace parley::cluster;

TEST_CASE("cluster options: the cluster port binds only loopback or private "
          "addresses") {
  for (auto ok : {"127.0.0.1", "127.3.4.5", "10.1.2.3", "172.16.0.1",
                  "172.31.255.255", "192.168.1.1", "169.254.0.7", "::1",
                  "fd00::1", "fe80::1", "localhost"})
    CHECK_MESSAGE(private_or_loopback(ok), ok);
  for (auto bad : {"0.0.0.0", "::", "8.8.8.8", "172.32.0.1", "192.169.0.1",
                   "2001:db8::1", "example.com", "", "127.0.0.1 "})
    CHECK_MESSAGE(!private_or_loopback(bad), bad);
}

TEST_CASE("cluster options: HOST:PORT and node lists parse strictly") {
  auto hp = parse_host_port("127.0.0.1:7400");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == 7400);
  auto v6 = parse_host_port("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  for (auto bad : {"", ":", "127.0.0.1", "127.0.0.1:", ":80", "::1:80",
                   "h:65536", "h:-1", "h:80x", "h:1234567"})
    CHECK_MESSAGE(!parse_host_port(bad), bad);
  auto nodes = parse_node_list("1,2,3");
  REQUIRE(nodes);
  CHECK(*nodes == std::vector<uint64_t>{1, 2, 3});
  for (auto bad : {"", ",", "1,", ",1", "1,,2", "0", "65536", "1,1", "a",
                   "1;2", "999999999999999999999"})
    CHECK_MESSAGE(!parse_node_list(bad), bad);
}

TEST_CASE("cluster options: validate names the first bad option") {
  cluster_options o;
  CHECK(validate(o).empty()); // no etcd: a single node, nothing to check
  o.etcd = "http://127.0.0.1:2379";
  CHECK(validate(o).find("--cluster.node") != std::string::npos);
  o.node = 3;
  CHECK(validate(o).empty());
  o.listen = "0.0.0.0:7400";
  CHECK(validate(o).find("--cluster.listen") != std::string::npos);
  o.listen = "127.0.0.1:7400";
  o.etcd = "https://127.0.0.1:2379";
  CHECK(validate(o).find("--cluster.etcd") != std::string::npos);
  o.etcd = "http://127.0.0.1:2379";
  o.fence_margin = std::chrono::milliseconds(3000); // over half of 5 s
  CHECK(validate(o).find("--cluster.fence-margin-ms") != std::string::npos);
  o.fence_margin = std::chrono::milliseconds(1500);
  o.tls_cert = "node.pem";
  CHECK(validate(o).find("--cluster.tls") != std::string::npos);
  o.tls_cert.clear();
  o.name = "a/b";
  CHECK(validate(o).find("--cluster.name") != std::string::npos);
}

TEST_CASE("cluster: a registration and a map survive their JSON, and "
          "malformed ones are refused") {
  node_registration r{7, {"127.0.0.1", 7401}, "1765000000000"};
  auto back = parse_registration(registration_json(r));
  REQUIRE(back);
  CHECK(back->node == 7);
  CHECK(back->at.host == "127.0.0.1");
  CHECK(back->at.port == 7401);
  CHECK(back->incarnation == "1765000000000");
  for (auto bad : {"", "{", "[]", "{\"node\":7}", "{\"node\":0,\"host\":\"h\","
                   "\"port\":1,\"incarnation\":\"i\"}",
                   "{\"node\":7,\"host\":\"h\",\"port\":70000,"
                   "\"incarnation\":\"i\"}",
                   "{\"node\":7.5,\"host\":\"h\",\"port\":1,"
                   "\"incarnation\":\"i\"}",
                   "{\"node\":7,\"host\":1,\"port\":1,\"incarnation\":\"i\"}"})
    CHECK_MESSAGE(!parse_registration(bad), bad);

  partition_map m;
  m.map_epoch = 12;
  m.owners = {1, 2, 3, 1, 2, 3};
  auto mm = parse_map(map_json(m));
  REQUIRE(mm);
  CHECK(mm->map_epoch == 12);
  CHECK(mm->owners == m.owners);
  for (auto bad :
       {"", "null", "{\"map_epoch\":1,\"partitions\":2,\"owners\":[1]}",
        "{\"map_epoch\":0,\"partitions\":1,\"owners\":[1]}",
        "{\"map_epoch\":1,\"partitions\":1,\"owners\":[-1]}",
        "{\"map_epoch\":1,\"partitions\":1,\"owners\":[\"1\"]}",
        "{\"map_epoch\":1,\"partitions\":0,\"owners\":[]}",
        "{\"map_epoch\":1,\"partitions\":1,\"owners\":[1]"})
    CHECK_MESSAGE(!parse_map(bad), bad);
  std::string huge = "{\"map_epoch\":1,\"partitions\":1,\"owners\":[1],"
                     "\"x\":\""
                     + std::string(2 << 20, 'a') + "\"}";
  CHECK(!parse_map(huge));
}
