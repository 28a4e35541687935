#include "cluster_clients.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "cluster_fixture.hpp"
#include "parleyd_node.hpp"

namespace parley::e2e {

using gateway::frame_format;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

deployment of(test_cluster& c) {
  return {[&c](uint64_t n) { return c.port(n); },
          [&c](uint64_t conv) { return c.owner_of_conversation(conv); }};
}

deployment of(lone_node& n) {
  return {[&n](uint64_t) { return n.port(); },
          [](uint64_t) { return uint64_t{1}; }};
}

std::optional<user_account> try_register(uint16_t port, const std::string& name,
                                         const std::string& device) {
  try {
    auto r = http_call(port, "POST", "/v1/accounts",
                       R"({"username":")" + name
                         + R"(","password":"correct horse"})");
    if (r.status != 201)
      return std::nullopt;
    auto l = http_call(port, "POST", "/v1/login",
                       R"({"username":")" + name
                         + R"(","password":"correct horse","deviceName":")"
                         + device + R"("})");
    if (l.status != 200)
      return std::nullopt;
    user_account out{name, 0, json_field(l.body, "token")};
    auto id = json_field(l.body, "userId");
    if (id.empty() || out.token.size() < 43)
      return std::nullopt;
    out.id = std::stoull(id);
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

user_account register_user(uint16_t port, const std::string& name,
                           const std::string& device) {
  auto a = try_register(port, name, device);
  REQUIRE_MESSAGE(a, "registering " << name << " on port " << port);
  return *a;
}

std::string login_device(uint16_t port, const std::string& name,
                         const std::string& device) {
  auto l = http_call(port, "POST", "/v1/login",
                     R"({"username":")" + name
                       + R"(","password":"correct horse","deviceName":")"
                       + device + R"("})");
  REQUIRE_MESSAGE(l.status == 200, "login " << name << ": " << l.body);
  return json_field(l.body, "token");
}

void device::connect(uint16_t port, const std::string& token) {
  ws = std::make_unique<ws_client>(port);
  auto w = ws->call(hello(1, token), frame_format::binary);
  REQUIRE(w);
  REQUIRE_MESSAGE(w->has_welcome(), w->DebugString());
}

uint32_t device::send(v1::ClientFrame f) {
  f.set_request_id(++rid);
  ws->send(f, frame_format::binary);
  return rid;
}

bool device::read_one(int timeout_ms) {
  auto f = ws->read(timeout_ms);
  if (!f)
    return false;
  if (f->has_message())
    got.push_back(f->message());
  else if (f->has_receipt())
    receipts.push_back(f->receipt());
  else if (f->request_id() != 0)
    answers[f->request_id()] = *f;
  return true;
}

std::optional<v1::ServerFrame> device::answer(uint32_t id, int bound_ms) {
  auto deadline = steady_clock::now() + milliseconds(bound_ms);
  while (answers.count(id) == 0) {
    auto left = std::chrono::duration_cast<milliseconds>(
                  deadline - steady_clock::now()).count();
    if (left <= 0 || !read_one(static_cast<int>(left)))
      return std::nullopt;
  }
  return answers[id];
}

bool device::wait_messages(size_t n, int bound_ms) {
  return wait_until([&] { return got.size() >= n; }, bound_ms);
}

bool device::wait_until(const std::function<bool()>& done, int bound_ms) {
  auto deadline = steady_clock::now() + milliseconds(bound_ms);
  while (!done()) {
    auto left = std::chrono::duration_cast<milliseconds>(
                  deadline - steady_clock::now()).count();
    if (left <= 0 || !read_one(static_cast<int>(left)))
      return false;
  }
  return true;
}

std::optional<v1::ReceiptUpdate>
device::wait_receipt(const std::function<bool(const v1::ReceiptUpdate&)>& pred,
                     int bound_ms) {
  auto deadline = steady_clock::now() + milliseconds(bound_ms);
  size_t seen = 0;
  for (;;) {
    for (; seen < receipts.size(); ++seen)
      if (pred(receipts[seen]))
        return receipts[seen];
    auto left = std::chrono::duration_cast<milliseconds>(
                  deadline - steady_clock::now()).count();
    if (left <= 0 || !read_one(static_cast<int>(left)))
      return std::nullopt;
  }
}

void device::drain(int quiet_ms) {
  while (read_one(quiet_ms)) {
  }
}

std::vector<uint64_t> device::seqs() const {
  std::vector<uint64_t> out;
  for (auto& m : got)
    out.push_back(m.server_sequence());
  return out;
}

std::vector<uint64_t> device::seqs_in(uint64_t conv) const {
  std::vector<uint64_t> out;
  for (auto& m : got)
    if (m.conversation_id() == conv)
      out.push_back(m.server_sequence());
  return out;
}

v1::ClientFrame text(uint64_t conv, const std::string& cmid,
                     const std::string& payload) {
  return send_frame(0, conv, cmid, payload);
}

v1::ClientFrame receipt(uint64_t conv, uint64_t seq, bool read) {
  v1::ClientFrame f;
  if (read) {
    f.mutable_read()->set_conversation_id(conv);
    f.mutable_read()->set_up_to_sequence(seq);
  } else {
    f.mutable_delivered()->set_conversation_id(conv);
    f.mutable_delivered()->set_up_to_sequence(seq);
  }
  return f;
}

v1::ClientFrame direct(const std::string& peer) {
  return open_direct(0, peer);
}

v1::ClientFrame group_create(const std::string& name,
                             const std::vector<uint64_t>& members) {
  v1::ClientFrame f;
  f.mutable_group_create()->set_name(name);
  for (auto id : members)
    f.mutable_group_create()->add_user_ids(id);
  return f;
}

v1::ClientFrame group_add(uint64_t conv, const std::vector<std::string>& names) {
  v1::ClientFrame f;
  auto* g = f.mutable_group_change();
  g->set_conversation_id(conv);
  g->set_change(v1::Membership::CHANGE_ADDED);
  for (auto& n : names)
    g->add_usernames(n);
  return f;
}

v1::SyncPage inbox_page(uint16_t port, const std::string& token) {
  ws_client c{port};
  auto w = c.call(hello(1, token), frame_format::binary);
  REQUIRE(w);
  REQUIRE(w->has_welcome());
  auto pages = sync_all(c, {}, 100, frame_format::binary, 2);
  REQUIRE(!pages.empty());
  return pages[0];
}

std::vector<v1::Message> history(uint16_t port, const std::string& token,
                                 uint64_t conv) {
  ws_client c{port};
  auto w = c.call(hello(1, token), frame_format::binary);
  REQUIRE(w);
  REQUIRE(w->has_welcome());
  std::vector<v1::Message> out;
  // Pages of 7 (many pages on purpose); up to 20,000 of them: the move
  // tests' senders can pass the 7,000 messages 1,000 pages hold.
  for (auto& p : sync_all(c, {{conv, 0}}, 7, frame_format::binary, 2, 20000))
    for (auto& m : p.messages())
      if (m.conversation_id() == conv)
        out.push_back(m);
  return out;
}

std::vector<v1::ReceiptUpdate> synced_receipts(uint16_t port,
                                               const std::string& token,
                                               uint64_t conv, uint64_t after) {
  ws_client c{port};
  auto w = c.call(hello(1, token), frame_format::binary);
  REQUIRE(w);
  REQUIRE(w->has_welcome());
  std::vector<v1::ReceiptUpdate> out;
  for (auto& p : sync_all(c, {{conv, after}}, 100, frame_format::binary, 2))
    for (auto& r : p.receipts())
      if (r.conversation_id() == conv)
        out.push_back(r);
  return out;
}

int64_t unread_of(const v1::SyncPage& page, uint64_t conv) {
  for (auto& e : page.inbox())
    if (e.conversation_id() == conv)
      return static_cast<int64_t>(e.unread_count());
  return -1;
}

bool eventually(const std::function<bool()>& probe, int bound_ms) {
  auto deadline = steady_clock::now() + milliseconds(bound_ms);
  for (;;) {
    if (probe())
      return true;
    if (steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
}

} // namespace parley::e2e
