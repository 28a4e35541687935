// A group across a real three-node cluster (issue 22): its conversation is
// owned by node B while its members are connected to all three nodes (one
// of them with a device on two nodes). Members get exactly the events of
// their window, live, once and in order; the sender hears the aggregate
// receipt; the inbox counts what is unread; a new device syncing on
// another node gets the same history. The same scenario runs against a
// single node as a control: "works as on one node".

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "cluster_clients.hpp"
#include "cluster_fixture.hpp"

using namespace parley;
using namespace parley::e2e;

namespace {

using seqs = std::vector<uint64_t>;

void group_across_nodes(deployment d, node_id A, node_id B, node_id C) {
  auto ann = register_user(d.port(A), "ann", "phone");
  auto ben = register_user(d.port(B), "ben", "phone");
  auto cat = register_user(d.port(C), "cat", "phone");
  auto dan = register_user(d.port(A), "dan", "phone");
  auto dan_laptop = login_device(d.port(C), "dan", "laptop");
  device an, be, ca, dp, dl;
  an.connect(d.port(A), ann.token);
  be.connect(d.port(B), ben.token);
  ca.connect(d.port(C), cat.token);
  dp.connect(d.port(B), dan.token);
  dl.connect(d.port(C), dan_laptop);

  // Ann creates groups (alone) until one lands on node B.
  uint64_t group = 0;
  for (int k = 0; k < 60 && group == 0; ++k) {
    auto f = an.call(group_create("team", {}));
    REQUIRE(f);
    REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
    CHECK(f->accepted().server_sequence() == 1);
    if (d.owner(f->accepted().conversation_id()) == B)
      group = f->accepted().conversation_id();
  }
  REQUIRE_MESSAGE(group != 0, "no group landed on node " << B);
  MESSAGE("group " << group << " owned by node " << B);
  // 2: Ann adds the others by name; they hear it before they send.
  auto added = an.call(group_add(group, {"ben", "cat", "dan"}));
  REQUIRE(added);
  REQUIRE_MESSAGE(added->has_accepted(), added->DebugString());
  CHECK(added->accepted().server_sequence() == 2);
  for (auto* m : {&be, &ca, &dp, &dl})
    REQUIRE(m->wait_messages(1));
  // 3: ben, 4: cat, 5: dan's phone, 6: ann.
  int i = 0;
  for (auto* s : {&be, &ca, &dp, &an}) {
    auto f = s->call(text(group, "g" + std::to_string(i), "text " + std::to_string(i)));
    REQUIRE(f);
    REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
    CHECK(f->accepted().server_sequence() == uint64_t(3 + i));
    ++i;
  }
  // Every device: its window, once, in order; never its own sends.
  std::map<device*, seqs> want{{&an, {1, 2, 3, 4, 5}},
                               {&be, {2, 4, 5, 6}},
                               {&ca, {2, 3, 5, 6}},
                               {&dp, {2, 3, 4, 6}},
                               {&dl, {2, 3, 4, 5, 6}}};
  for (auto& [dev, w] : want) {
    auto* x = dev;
    auto n = w.size();
    CHECK(x->wait_until([&] { return x->seqs_in(group).size() >= n; }));
  }
  for (auto& [dev, w] : want) {
    dev->drain();
    CHECK(dev->seqs_in(group) == w);
  }
  // The membership, read on node C by dan's laptop.
  v1::ClientFrame look;
  look.mutable_get_group()->set_conversation_id(group);
  auto info = dl.call(look);
  REQUIRE(info);
  REQUIRE_MESSAGE(info->has_group_info(), info->DebugString());
  std::map<uint64_t, bool> members;
  for (auto& m : info->group_info().members())
    members[m.user_id()] = m.admin();
  CHECK(members == std::map<uint64_t, bool>{
                     {ann.id, true}, {ben.id, false}, {cat.id, false},
                     {dan.id, false}});
  CHECK(info->group_info().head_sequence() == 6);

  // Cat reads everything: Ann (latest message 6) hears the aggregate,
  // "delivered to 1, read by 1 of 3 others", never a member's own cursor.
  ca.send(receipt(group, 6, true));
  auto agg = an.wait_receipt([&](auto& r) {
    return r.conversation_id() == group && r.read_count() >= 1;
  });
  REQUIRE(agg);
  CHECK(agg->user_id() == 0);
  CHECK(agg->up_to_sequence() == 6);
  CHECK(agg->read_count() == 1);
  CHECK(agg->delivered_count() == 1);
  CHECK(agg->member_count() == 3);

  // Unread: ben has read nothing: the events from others after his
  // addition (2, 4, 5, 6); cat none.
  // (Read by devices of their own: a device's new connection replaces its
  // old one.)
  auto ben_reader = login_device(d.port(C), "ben", "reader");
  auto cat_reader = login_device(d.port(A), "cat", "reader");
  auto ann_reader = login_device(d.port(C), "ann", "reader");
  v1::SyncPage page;
  CHECK_MESSAGE(eventually([&] {
                  page = inbox_page(d.port(C), ben_reader);
                  return unread_of(page, group) == 4;
                }),
                "ben's inbox: " << page.DebugString());
  CHECK(eventually([&] {
    page = inbox_page(d.port(A), cat_reader);
    return unread_of(page, group) == 0;
  }));
  CHECK(unread_of(page, group) == 0);

  // A new device of cat's syncing on node A: from cat's addition on; ann's
  // own sync on node C: all of it; the same messages where they overlap.
  auto tablet = login_device(d.port(A), "cat", "tablet");
  auto cat_log = history(d.port(A), tablet, group);
  auto ann_log = history(d.port(C), ann_reader, group);
  seqs cat_seqs, ann_seqs;
  for (auto& m : cat_log)
    cat_seqs.push_back(m.server_sequence());
  for (auto& m : ann_log)
    ann_seqs.push_back(m.server_sequence());
  CHECK(cat_seqs == seqs{2, 3, 4, 5, 6});
  REQUIRE(ann_seqs == seqs{1, 2, 3, 4, 5, 6});
  for (size_t k = 0; k < cat_log.size(); ++k)
    CHECK(cat_log[k].SerializeAsString()
          == ann_log[k + 1].SerializeAsString());
}

} // namespace

TEST_CASE("cluster_control_group_on_one_node_meets_the_same_expectations") {
  lone_node n{{"--partitions=6"}};
  group_across_nodes(of(n), 1, 1, 1);
}

TEST_CASE("cluster_group_with_members_on_three_nodes_works_as_on_one_node") {
  test_cluster c;
  group_across_nodes(of(c), 1, 2, 3);
}
