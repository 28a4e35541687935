#include "parleyd_node.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <regex>

#include <sys/wait.h>
#include <unistd.h>

#include "runtime/accounts/credentials.hpp"
#include "ws_client.hpp"

namespace parley::e2e {

std::string json_field(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\":\"?([^\",}]*)");
  return std::regex_search(json, m, re) ? m[1].str() : std::string{};
}

node::node(std::vector<std::string> extra) : extra_(std::move(extra)) {
  static int counter = 0;
  dir = (std::filesystem::temp_directory_path()
         / ("parley-e2e-" + std::to_string(getpid()) + "-"
            + std::to_string(counter++)))
          .string();
  std::filesystem::remove_all(dir);
  restart();
}

node::~node() {
  if (proc_)
    stop(SIGTERM);
  std::filesystem::remove_all(dir);
}

void node::stop(int sig) {
  REQUIRE(proc_);
  proc_->signal(sig);
  auto st = proc_->wait(15000);
  if (sig == SIGTERM) {
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    if (!WIFEXITED(st))
      for (auto& l : proc_->lines())
        MESSAGE(l);
  } else {
    CHECK(st != -1);
  }
  proc_.reset();
}

std::vector<std::string> node::log() {
  if (!proc_)
    return {};
  std::string line;
  while (proc_->read_line(line, 200)) {
  }
  return proc_->lines();
}

void node::restart() {
  // The old process holds LevelDB's lock until it is gone: kill and reap it
  // before the new one opens the data.
  if (proc_)
    stop(SIGKILL);
  std::vector<std::string> args{"--data", dir, "--listen", "127.0.0.1:0",
                                "--parley.password-hash=min"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  proc_ = std::make_unique<child>(PARLEYD, args);
  port = started_port(*proc_, 10000);
  REQUIRE(port != 0);
  static const std::regex admin("admin listening .*port=(\\d+)");
  admin_port = 0;
  std::smatch m;
  for (auto& l : proc_->lines())
    if (std::regex_search(l, m, admin))
      admin_port = static_cast<uint16_t>(std::stoi(m[1].str()));
}

std::string node::account(const std::string& name, const std::string& device) {
  auto r = http_call(port, "POST", "/v1/accounts",
                     R"({"username":")" + name
                       + R"(","password":"correct horse"})");
  CHECK(r.status == 201);
  return login(name, device);
}

std::string node::login(const std::string& name, const std::string& device) {
  auto r = http_call(port, "POST", "/v1/login",
                     R"({"username":")" + name
                       + R"(","password":"correct horse","deviceName":")"
                       + device + R"("})");
  REQUIRE(r.status == 200);
  auto token = json_field(r.body, "token");
  REQUIRE(token.size() >= 43);
  return token;
}

uint64_t user_id_of(uint16_t port, const std::string& token) {
  ws_client c{port};
  auto w = c.call(hello(1, token), gateway::frame_format::binary);
  REQUIRE(w);
  REQUIRE(w->has_welcome());
  return w->welcome().user_id();
}

uint64_t open_chat(ws_client& c, const std::string& token,
                   const std::string& peer, gateway::frame_format fmt) {
  auto w = c.call(hello(1, token), fmt);
  REQUIRE(w);
  REQUIRE(w->has_welcome());
  auto o = c.call(open_direct(2, peer), fmt);
  REQUIRE(o);
  REQUIRE(o->has_direct_opened());
  return o->direct_opened().conversation_id();
}

std::vector<v1::SyncPage>
sync_all(ws_client& c, const std::map<uint64_t, uint64_t>& cursors,
         uint32_t page_size, gateway::frame_format fmt, uint32_t first_rid,
         int max_pages) {
  std::vector<v1::SyncPage> pages;
  auto f = sync_frame(first_rid, cursors, page_size);
  auto* s = f.mutable_sync();
  for (int i = 0; i < max_pages; ++i) {
    auto p = c.call(f, fmt, 30000);
    REQUIRE(p);
    REQUIRE(p->has_sync_page());
    pages.push_back(p->sync_page());
    if (p->sync_page().continuation().empty())
      return pages;
    f.set_request_id(f.request_id() + 1);
    s->set_continuation(p->sync_page().continuation());
  }
  FAIL("sync did not complete within " << max_pages << " pages");
  return pages;
}

std::vector<v1::SyncPage> sync_by_continuation(ws_client& c,
                                               v1::ClientFrame first,
                                               gateway::frame_format fmt,
                                               uint32_t limit) {
  std::vector<v1::SyncPage> pages;
  auto f = std::move(first);
  for (int i = 0; i < 1000; ++i) {
    auto p = c.call(f, fmt, 30000);
    REQUIRE(p);
    REQUIRE(p->has_sync_page());
    CHECK(gateway::encode_server_frame(*p, fmt).size() <= limit);
    pages.push_back(p->sync_page());
    if (p->sync_page().continuation().empty())
      return pages;
    f = sync_continue(f.request_id() + 1, p->sync_page().continuation());
  }
  FAIL("sync did not complete");
  return pages;
}

std::string admin_token_hash(const std::string& token) {
  std::string hex;
  for (unsigned char ch : credentials::token_hash(token)) {
    static const char digits[] = "0123456789abcdef";
    hex += digits[ch >> 4];
    hex += digits[ch & 15];
  }
  return hex;
}

v1::Error::Code error_of(const std::optional<v1::ServerFrame>& f) {
  REQUIRE(f);
  REQUIRE(f->has_error());
  return f->error().code();
}

v1::ClientFrame receipt_frame(uint32_t rid, uint64_t conv, uint64_t seq,
                              bool read) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  if (read) {
    f.mutable_read()->set_conversation_id(conv);
    f.mutable_read()->set_up_to_sequence(seq);
  } else {
    f.mutable_delivered()->set_conversation_id(conv);
    f.mutable_delivered()->set_up_to_sequence(seq);
  }
  return f;
}

bool is_receipt(const v1::ServerFrame& f, v1::ReceiptKind kind, uint64_t seq) {
  return f.has_receipt() && f.receipt().kind() == kind
         && f.receipt().up_to_sequence() == seq;
}

} // namespace parley::e2e
