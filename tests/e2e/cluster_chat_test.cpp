// Chat across a real three-node cluster (issue 22): etcd and three parleyd
// processes on loopback. Alice on node A and Bob on node B chat in a
// conversation owned by node C: messages both ways arrive in order exactly
// once, receipts reach the other side, the inbox counts what is unread, and
// a third device syncing on node C gets the same history. A group whose
// members are connected to all three nodes behaves as on one node.
//
// Each scenario also runs against a single node ("control"): the same
// expectations hold there, so the cluster cases assert "as on one node".

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "cluster_clients.hpp"
#include "cluster_fixture.hpp"

using namespace parley;
using namespace parley::e2e;

namespace {

using seqs = std::vector<uint64_t>;

/// The pushed messages' client message ids, in arrival order.
std::vector<std::string> cmids(const device& d) {
  std::vector<std::string> out;
  for (auto& m : d.got)
    out.push_back(m.client_message_id());
  return out;
}

void chat_across_nodes(deployment d, node_id A, node_id B, node_id C) {
  auto alice = register_user(d.port(A), "alice", "phone");
  device a;
  a.connect(d.port(A), alice.token);
  // Bob is whichever bobN whose direct conversation with Alice lands on C.
  user_account bob;
  uint64_t conv = 0;
  for (int k = 0; k < 60 && conv == 0; ++k) {
    auto cand = register_user(d.port(B), "bob" + std::to_string(k), "desk");
    auto o = a.call(direct(cand.name));
    REQUIRE(o);
    REQUIRE_MESSAGE(o->has_direct_opened(), o->DebugString());
    if (d.owner(o->direct_opened().conversation_id()) == C) {
      bob = cand;
      conv = o->direct_opened().conversation_id();
    }
  }
  REQUIRE_MESSAGE(conv != 0, "no direct conversation landed on node " << C);
  MESSAGE("alice " << alice.id << " on node " << A << ", " << bob.name << " "
                   << bob.id << " on node " << B << ", conversation " << conv
                   << " owned by node " << C);
  device b;
  b.connect(d.port(B), bob.token);

  // Both send ten, pipelined and at the same time.
  const int n = 10;
  std::vector<uint32_t> a_rids, b_rids;
  std::vector<std::string> a_ids, b_ids;
  for (int i = 0; i < n; ++i) {
    a_ids.push_back("a" + std::to_string(i));
    b_ids.push_back("b" + std::to_string(i));
    a_rids.push_back(a.send(text(conv, a_ids.back(), "from alice " + a_ids.back())));
    b_rids.push_back(b.send(text(conv, b_ids.back(), "from bob " + b_ids.back())));
  }
  seqs a_acc, b_acc;
  for (auto r : a_rids) {
    auto f = a.answer(r);
    REQUIRE(f);
    REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
    a_acc.push_back(f->accepted().server_sequence());
  }
  for (auto r : b_rids) {
    auto f = b.answer(r);
    REQUIRE(f);
    REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
    b_acc.push_back(f->accepted().server_sequence());
  }
  // Each one's messages got increasing sequences; together exactly 1..20.
  CHECK(std::is_sorted(a_acc.begin(), a_acc.end()));
  CHECK(std::is_sorted(b_acc.begin(), b_acc.end()));
  std::set<uint64_t> all(a_acc.begin(), a_acc.end());
  all.insert(b_acc.begin(), b_acc.end());
  CHECK(all.size() == 2 * n);
  CHECK(*all.rbegin() == 2 * n);
  // Each side gets the other's ten, in order, once, at the sequences the
  // sender was told; nothing of its own comes back.
  REQUIRE(b.wait_messages(n));
  REQUIRE(a.wait_messages(n));
  a.drain();
  b.drain();
  CHECK(cmids(b) == a_ids);
  CHECK(b.seqs() == a_acc);
  CHECK(cmids(a) == b_ids);
  CHECK(a.seqs() == b_acc);
  for (auto& m : b.got)
    CHECK(m.sender_user_id() == alice.id);
  for (auto& m : a.got)
    CHECK(m.sender_user_id() == bob.id);

  // Bob's device acknowledges everything, and Bob reads up to 10: Alice
  // hears both, from Bob.
  const uint64_t head = 2 * n, mid = n;
  b.send(receipt(conv, head, false));
  auto delivered = a.wait_receipt([&](auto& r) {
    return r.kind() == v1::RECEIPT_KIND_DELIVERED && r.up_to_sequence() == head;
  });
  REQUIRE(delivered);
  CHECK(delivered->user_id() == bob.id);
  CHECK(delivered->conversation_id() == conv);
  b.send(receipt(conv, mid, true));
  auto read = a.wait_receipt([&](auto& r) {
    return r.kind() == v1::RECEIPT_KIND_READ && r.up_to_sequence() == mid;
  });
  REQUIRE(read);
  CHECK(read->user_id() == bob.id);

  // Unread counts (the inbox rows are written asynchronously: polled),
  // read by devices of their own (a device's new connection replaces its
  // old one).
  auto alice_reader = login_device(d.port(B), "alice", "reader");
  auto bob_reader = login_device(d.port(C), bob.name, "reader");
  int64_t bob_unread = std::count_if(a_acc.begin(), a_acc.end(),
                                     [&](uint64_t s) { return s > mid; });
  v1::SyncPage page;
  CHECK_MESSAGE(eventually([&] {
                  page = inbox_page(d.port(C), bob_reader);
                  return unread_of(page, conv) == bob_unread;
                }),
                "bob's inbox: " << page.DebugString());
  CHECK(page.total_unread() == static_cast<uint64_t>(bob_unread));
  CHECK(eventually([&] {
    page = inbox_page(d.port(B), alice_reader);
    return unread_of(page, conv) == n;
  }));
  CHECK(unread_of(page, conv) == n);
  CHECK(page.inbox_size() == 1);
  // Alice reads everything: Bob hears it; her unread count drops to 0.
  a.send(receipt(conv, head, true));
  auto alice_read = b.wait_receipt([&](auto& r) {
    return r.kind() == v1::RECEIPT_KIND_READ && r.up_to_sequence() == head;
  });
  REQUIRE(alice_read);
  CHECK(alice_read->user_id() == alice.id);
  CHECK(eventually([&] {
    page = inbox_page(d.port(A), alice_reader);
    return unread_of(page, conv) == 0;
  }));
  CHECK(page.total_unread() == 0);
  REQUIRE(page.inbox_size() == 1);
  CHECK(page.inbox(0).head_sequence() == head);
  CHECK(page.inbox(0).read_sequence() == head);

  // A third device of Alice's, new, syncing on node C: the same history
  // as her phone's sync on node A, each message once, gapless.
  auto tablet = login_device(d.port(C), "alice", "tablet");
  auto on_c = history(d.port(C), tablet, conv);
  auto on_a = history(d.port(A), alice_reader, conv);
  REQUIRE(on_c.size() == 2 * n);
  REQUIRE(on_a.size() == on_c.size());
  for (size_t i = 0; i < on_c.size(); ++i) {
    CHECK(on_c[i].server_sequence() == i + 1);
    CHECK(on_c[i].SerializeAsString() == on_a[i].SerializeAsString());
    bool mine = std::count(a_acc.begin(), a_acc.end(), i + 1) == 1;
    CHECK(on_c[i].sender_user_id() == (mine ? alice.id : bob.id));
  }
  // Bob's cursors travel with the sync: delivered 20, read 10.
  std::map<int, uint64_t> bob_cursors;
  for (auto& r : synced_receipts(d.port(C), tablet, conv, head))
    if (r.user_id() == bob.id)
      bob_cursors[r.kind()] = r.up_to_sequence();
  CHECK(bob_cursors[v1::RECEIPT_KIND_DELIVERED] == head);
  CHECK(bob_cursors[v1::RECEIPT_KIND_READ] == mid);
}

} // namespace

TEST_CASE("cluster_control_chat_on_one_node_meets_the_same_expectations") {
  lone_node n{{"--partitions=6"}};
  chat_across_nodes(of(n), 1, 1, 1);
}

TEST_CASE("cluster_alice_on_a_and_bob_on_b_chat_in_a_conversation_owned_by_c") {
  test_cluster c;
  for (node_id n = 1; n <= 3; ++n)
    MESSAGE("node " << n << " /healthz " << c.health(n).body);
  chat_across_nodes(of(c), 1, 2, 3);
}
