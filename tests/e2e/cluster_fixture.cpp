#include "cluster_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "runtime/cluster/etcd_client.hpp"
#include "ws_client.hpp"

namespace parley::e2e {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::set<uint64_t> numbers_in(const std::string& json, const std::string& key) {
  std::smatch m;
  std::set<uint64_t> out;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":\\[([^\\]]*)\\]")))
    return out;
  auto list = m[1].str();
  std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), num);
       it != std::sregex_iterator(); ++it)
    out.insert(std::stoull(it->str()));
  return out;
}

} // namespace

// -- cluster ------------------------------------------------------------------

test_cluster::test_cluster(cluster_options opts) : opts_(std::move(opts)) {
  char tmpl[] = "/tmp/parley-cluster-XXXXXX";
  if (mkdtemp(tmpl) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  etcd_ = std::make_unique<etcd_process>();
  REQUIRE(etcd_->start());
  std::string initial;
  for (int i = 1; i <= opts_.nodes; ++i)
    initial += (i > 1 ? "," : "") + std::to_string(i);
  for (int i = 1; i <= opts_.nodes; ++i) {
    std::vector<std::string> args{
      "--parley.password-hash=min",
      "--partitions=" + std::to_string(opts_.partitions),
      "--cluster.etcd=" + etcd_url(),
      "--cluster.name=" + opts_.name,
      "--cluster.node=" + std::to_string(i),
      "--cluster.listen=127.0.0.1:0",
      "--cluster.initial-nodes=" + initial,
      // Tests find a placement by creating groups until one lands on a
      // given node (up to 60 per user); the default burst of 10 refused
      // the 11th, failing about one search in fifty (p = (2/3)^10).
      "--parley.limit-group-create=600/min,100"};
    args.insert(args.end(), opts_.extra.begin(), opts_.extra.end());
    if (auto it = opts_.node_extra.find(i); it != opts_.node_extra.end())
      args.insert(args.end(), it->second.begin(), it->second.end());
    nodes_.push_back(std::make_unique<cluster_node>(
      i, dir_ + "/node" + std::to_string(i), std::move(args)));
  }
  for (auto& n : nodes_)
    REQUIRE(n->start());
  REQUIRE(wait_ready(60000, opts_.ready_nodes));
}

test_cluster::~test_cluster() {
  // SIGTERM every node at once, then collect them: each exits 0.
  for (auto& n : nodes_) {
    n->signal(SIGCONT);
    n->signal(SIGTERM);
  }
  for (auto& n : nodes_) {
    if (!n->running())
      continue;
    auto code = n->terminate();
    CHECK_MESSAGE(code == 0, "node " << n->id << " exited " << code
                                      << " on SIGTERM; log tail:\n"
                                      << log_tail(n->log(), 40));
  }
  nodes_.clear();
  etcd_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

cluster_node& test_cluster::at(node_id n) {
  REQUIRE(n >= 1);
  REQUIRE(n <= nodes_.size());
  return *nodes_[n - 1];
}

std::string test_cluster::etcd_url() const {
  return "http://127.0.0.1:" + std::to_string(etcd_->options().at.port);
}

node_health test_cluster::health(node_id n) {
  node_health h;
  auto& nd = at(n);
  if (!nd.running() || nd.port == 0)
    return h;
  http_result r;
  try {
    r = http_call(nd.port, "GET", "/healthz");
  } catch (const std::exception&) {
    return h; // not listening (yet, or any more)
  }
  if (r.status != 200)
    return h;
  h.answered = true;
  h.body = r.body;
  std::smatch m;
  if (std::regex_search(r.body, m, std::regex("\"lease\":\"(\\w+)\"")))
    h.lease = m[1].str();
  if (std::regex_search(r.body, m, std::regex("\"etcd\":\"(\\w+)\"")))
    h.etcd = m[1].str();
  if (std::regex_search(r.body, m, std::regex("\"map_epoch\":([0-9]+)")))
    h.map_epoch = std::stoull(m[1].str());
  for (auto p : numbers_in(r.body, "peers"))
    h.peers.insert(p);
  for (auto p : numbers_in(r.body, "owned"))
    h.owned.insert(static_cast<uint32_t>(p));
  return h;
}

bool test_cluster::wait_ready(int bound_ms, std::optional<std::set<node_id>> ready) {
  std::set<node_id> want;
  if (ready) {
    want = *ready;
  } else {
    for (auto& n : nodes_)
      if (n->running())
        want.insert(n->id);
  }
  auto deadline = steady_clock::now() + milliseconds(bound_ms);
  std::map<node_id, node_health> last;
  for (;;) {
    bool all = true;
    for (auto n : want) {
      auto h = health(n);
      bool ok = h.answered && h.lease == "live";
      for (auto other : want)
        if (other != n && h.peers.count(other) == 0)
          ok = false;
      last[n] = std::move(h);
      all = all && ok;
    }
    if (all)
      return true;
    if (steady_clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  for (auto& [n, h] : last)
    MESSAGE("node " << n << " /healthz: "
                    << (h.answered ? h.body : std::string("no answer"))
                    << "\nlog tail:\n" << log_tail(at(n).log(), 30));
  return false;
}

void test_cluster::freeze(node_id n) {
  at(n).signal(SIGSTOP);
}

void test_cluster::thaw(node_id n) {
  at(n).signal(SIGCONT);
}

bool test_cluster::restart(node_id n) {
  return at(n).start();
}

void test_cluster::stop_etcd() {
  etcd_->stop();
}

bool test_cluster::start_etcd() {
  return etcd_->start();
}

std::optional<partition_map> parse_map_json(const std::string& json) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"map_epoch\":([0-9]+)")))
    return std::nullopt;
  partition_map out;
  out.map_epoch = std::stoull(m[1].str());
  if (!std::regex_search(json, m, std::regex("\"owners\":\\[([0-9, ]*)\\]")))
    return std::nullopt;
  auto list = m[1].str();
  std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), num);
       it != std::sregex_iterator(); ++it)
    out.owners.push_back(std::stoull(it->str()));
  return out;
}

partition_map test_cluster::map() {
  parley::cluster::etcd_client cp(etcd_->options());
  auto key = "/parley/" + opts_.name + "/map";
  auto r = cp.range(key);
  REQUIRE_MESSAGE(r.ok(), "etcd range " << key << ": "
                                        << (r.ok() ? "" : r.error().message));
  for (auto& kv : r->kvs)
    if (kv.key == key) {
      auto m = parse_map_json(kv.value);
      REQUIRE_MESSAGE(m, "unparsable map: " << kv.value);
      REQUIRE(m->partitions() == opts_.partitions);
      return *m;
    }
  FAIL("no partition map in etcd at " << key);
  return {};
}

node_id test_cluster::owner_of_conversation(uint64_t conv) {
  auto m = map();
  return m.owner(
    partition_of(placement_key::conversation(conv), opts_.partitions));
}

node_id test_cluster::owner_of_user(uint64_t user) {
  auto m = map();
  return m.owner(partition_of(placement_key::user(user), opts_.partitions));
}

} // namespace parley::e2e
