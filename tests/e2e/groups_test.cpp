// Groups through a real parleyd: five users with two devices each. Members
// see exactly the messages from their join to their removal, live and by
// sync after being offline; only admins manage the group; outsiders and
// removed members cannot send or look.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "parleyd_node.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

/// One logged-in device and every message pushed to it.
struct device_view {
  std::string token;
  std::unique_ptr<ws_client> ws;
  std::vector<v1::Message> got;
  uint32_t rid = 100;

  void connect(uint16_t port) {
    ws = std::make_unique<ws_client>(port);
    auto w = ws->call(hello(1, token), frame_format::binary);
    REQUIRE(w);
    REQUIRE(w->has_welcome());
  }

  /// Sends `f` and returns its answer; pushes on the way are kept.
  std::optional<v1::ServerFrame> call(v1::ClientFrame f) {
    f.set_request_id(++rid);
    ws->send(f, frame_format::binary);
    for (;;) {
      auto r = ws->read(10000);
      if (!r || r->request_id() == f.request_id())
        return r;
      if (r->has_message())
        got.push_back(r->message());
    }
  }

  /// Reads pushes until none comes for `quiet_ms`.
  void drain(int quiet_ms = 300) {
    while (auto r = ws->read(quiet_ms))
      if (r->has_message())
        got.push_back(r->message());
  }

  /// Sequences received (and forgets them).
  std::vector<uint64_t> take() {
    std::vector<uint64_t> out;
    for (auto& m : got)
      out.push_back(m.server_sequence());
    got.clear();
    return out;
  }
};

v1::ClientFrame create_frame(const std::string& name,
                             std::vector<std::string> members) {
  v1::ClientFrame f;
  auto* g = f.mutable_group_create();
  g->set_name(name);
  for (auto& m : members)
    g->add_usernames(m);
  return f;
}

v1::ClientFrame change_frame(uint64_t conv, v1::Membership::Change change,
                             std::vector<std::string> names,
                             std::vector<uint64_t> ids = {}) {
  v1::ClientFrame f;
  auto* g = f.mutable_group_change();
  g->set_conversation_id(conv);
  g->set_change(change);
  for (auto& n : names)
    g->add_usernames(n);
  for (auto id : ids)
    g->add_user_ids(id);
  return f;
}

v1::ClientFrame send_to(uint64_t conv, const std::string& cmid,
                        const std::string& text) {
  return send_frame(0, conv, cmid, text);
}

using seqs = std::vector<uint64_t>;

/// Restarts the node's process; `d` logs `user` in again on a new device
/// and connects. (Drop every other view's connection first.)
void restart_on_new_device(node& n, device_view& d, const std::string& user) {
  d.ws.reset();
  n.restart();
  d.token = n.login(user, "laptop");
  d.connect(n.port);
}

/// The group's head and members as `d` reads them now.
v1::GroupInfo group_info_of(device_view& d, uint64_t group) {
  v1::ClientFrame look;
  look.mutable_get_group()->set_conversation_id(group);
  auto info = d.call(look);
  REQUIRE(info);
  REQUIRE(info->has_group_info());
  return info->group_info();
}

} // namespace

namespace {

void five_users_two_devices(std::vector<std::string> node_args) {
  node n{node_args};
  const std::vector<std::string> names{"ann", "ben", "cat", "dan", "eve"};
  std::map<std::string, std::vector<device_view>> dev;
  std::map<std::string, uint64_t> id;
  for (auto& name : names) {
    dev[name].resize(2);
    dev[name][0].token = n.account(name, "phone");
    dev[name][1].token = n.login(name, "laptop");
    id[name] = user_id_of(n.port, dev[name][0].token);
  }
  // Everyone online except cat's laptop (it syncs at the end).
  for (auto& name : names)
    for (int d = 0; d < 2; ++d)
      if (!(name == "cat" && d == 1))
        dev[name][d].connect(n.port);
  auto& ann = dev["ann"][0];

  // 1: ann creates the group with ben and cat.
  auto created = ann.call(create_frame("team", {"ben", "cat"}));
  REQUIRE(created);
  REQUIRE(created->has_accepted());
  auto group = created->accepted().conversation_id();
  CHECK(created->accepted().server_sequence() == 1);

  // Not admins: ben can neither remove cat nor add dan.
  CHECK(error_of(dev["ben"][0].call(
          change_frame(group, v1::Membership::CHANGE_REMOVED, {"cat"})))
        == v1::Error::CODE_FORBIDDEN);
  CHECK(error_of(dev["ben"][0].call(
          change_frame(group, v1::Membership::CHANGE_ADDED, {"dan"})))
        == v1::Error::CODE_FORBIDDEN);
  // Unknown users are refused by name.
  CHECK(error_of(ann.call(
          change_frame(group, v1::Membership::CHANGE_ADDED, {"zed"})))
        == v1::Error::CODE_NOT_FOUND);

  // 2: ann sends; 3: ann adds dan (by id); 4: dan sends; 5: ann removes
  // ben; 6: cat sends.
  REQUIRE(ann.call(send_to(group, "a1", "m1"))->has_accepted());
  auto added = ann.call(change_frame(group, v1::Membership::CHANGE_ADDED, {},
                                     {id["dan"]}));
  REQUIRE(added);
  REQUIRE(added->has_accepted());
  CHECK(added->accepted().server_sequence() == 3);
  // dan's devices get their addition before they can send (so the send
  // below is not racing it).
  dev["dan"][0].drain();
  REQUIRE(dev["dan"][0].call(send_to(group, "d1", "m2"))->has_accepted());
  REQUIRE(ann.call(change_frame(group, v1::Membership::CHANGE_REMOVED,
                                {"ben"}))
            ->has_accepted());
  REQUIRE(dev["cat"][0].call(send_to(group, "c1", "m3"))->has_accepted());
  // ben, removed, cannot send; eve never could; neither can look.
  CHECK(error_of(dev["ben"][1].call(send_to(group, "b1", "x")))
        == v1::Error::CODE_FORBIDDEN);
  CHECK(error_of(dev["eve"][0].call(send_to(group, "e1", "x")))
        == v1::Error::CODE_FORBIDDEN);
  v1::ClientFrame look;
  look.mutable_get_group()->set_conversation_id(group);
  CHECK(error_of(dev["eve"][0].call(look)) == v1::Error::CODE_FORBIDDEN);
  CHECK(error_of(dev["ben"][0].call(look)) == v1::Error::CODE_FORBIDDEN);
  auto info = dev["dan"][1].call(look);
  REQUIRE(info);
  REQUIRE(info->has_group_info());
  CHECK(info->group_info().name() == "team");
  std::map<uint64_t, bool> members;
  for (auto& m : info->group_info().members())
    members[m.user_id()] = m.admin();
  CHECK(members == std::map<uint64_t, bool>{
                     {id["ann"], true}, {id["cat"], false}, {id["dan"], false}});
  CHECK(info->group_info().member_count() == 3);
  CHECK(info->group_info().next_after_user_id() == 0);
  // The same a page of two at a time.
  std::map<uint64_t, bool> paged;
  look.mutable_get_group()->set_limit(2);
  for (int page = 0; page < 3; ++page) {
    auto p = dev["dan"][1].call(look);
    REQUIRE(p);
    REQUIRE(p->has_group_info());
    for (auto& m : p->group_info().members())
      paged[m.user_id()] = m.admin();
    if (p->group_info().next_after_user_id() == 0)
      break;
    CHECK(p->group_info().members_size() == 2);
    look.mutable_get_group()->set_after_user_id(
      p->group_info().next_after_user_id());
  }
  CHECK(paged == members);

  // Live pushes, per device: each message once, in order, exactly the
  // window; a sender's own device does not get its message back
  // (membership events go to all of the author's devices).
  for (auto& name : names)
    for (auto& d : dev[name])
      if (d.ws)
        d.drain();
  CHECK(dev["ann"][0].take() == seqs{1, 3, 4, 5, 6});
  CHECK(dev["ann"][1].take() == seqs{1, 2, 3, 4, 5, 6});
  CHECK(dev["ben"][0].take() == seqs{1, 2, 3, 4, 5});
  CHECK(dev["ben"][1].take() == seqs{1, 2, 3, 4, 5});
  CHECK(dev["cat"][0].take() == seqs{1, 2, 3, 4, 5});
  CHECK(dev["dan"][0].take() == seqs{3, 5, 6});
  CHECK(dev["dan"][1].take() == seqs{3, 4, 5, 6});
  CHECK(dev["eve"][0].take().empty());
  CHECK(dev["eve"][1].take().empty());
  // The path taken: fan-out shards for a large group, the registry else.
  auto metrics = http_call(n.port, "GET", "/metrics").body;
  auto at = metrics.find("\nparley_fanout_pushes_total ");
  REQUIRE(at != std::string::npos);
  auto shard_pushes = std::stoull(metrics.substr(at + 28));
  if (node_args.empty())
    CHECK(shard_pushes == 0);
  else
    CHECK(shard_pushes == 33); // every push above went through a shard

  // Membership events arrive structured: the removal names ben.
  dev["cat"][0].drain();
  REQUIRE(ann.call(change_frame(group, v1::Membership::CHANGE_PROMOTED,
                                {"cat"}))
            ->has_accepted());
  dev["cat"][0].drain();
  REQUIRE(dev["cat"][0].got.size() == 1);
  auto& ev = dev["cat"][0].got[0];
  CHECK(ev.kind() == v1::MESSAGE_KIND_MEMBERSHIP);
  CHECK(ev.membership().change() == v1::Membership::CHANGE_PROMOTED);
  CHECK(ev.membership().actor_user_id() == id["ann"]);
  CHECK(ev.membership().target_user_ids_size() == 1);
  CHECK(ev.membership().target_user_ids(0) == id["cat"]);
  dev["cat"][0].got.clear();

  // Receipts in a group reach the sender aggregated: cat reads up to the
  // head; ann (whose latest message is 2) hears "delivered to 1, read by
  // 1 of 2 others", not cat's cursor.
  v1::ClientFrame read;
  read.mutable_read()->set_conversation_id(group);
  read.mutable_read()->set_up_to_sequence(7);
  read.set_request_id(900);
  dev["cat"][0].ws->send(read, frame_format::binary);
  std::optional<v1::ReceiptUpdate> aggregate;
  for (int i = 0; i < 20 && !aggregate; ++i) {
    auto f = ann.ws->read(2000);
    if (!f)
      break;
    if (f->has_receipt()) {
      CHECK(f->receipt().user_id() == 0); // never a member's own cursor
      aggregate = f->receipt();
    }
  }
  REQUIRE(aggregate);
  CHECK(aggregate->conversation_id() == group);
  CHECK(aggregate->up_to_sequence() == 2);
  CHECK(aggregate->delivered_count() == 1);
  CHECK(aggregate->read_count() == 1);
  CHECK(aggregate->member_count() == 2);

  // Sync from nothing: cat's laptop (offline all along) gets the whole
  // log; ben's phone (reconnected) gets up to its removal; dan's up from
  // its addition; eve nothing of the group.
  auto synced = [&](const std::string& name, int d) {
    ws_client c{n.port};
    REQUIRE(c.call(hello(1, dev[name][d].token), frame_format::json)
              ->has_welcome());
    seqs out;
    std::map<uint64_t, uint64_t> cursors;
    if (name != "eve") // eve has no cursor for it: she was never in
      cursors[group] = 0;
    for (auto& p : sync_all(c, cursors, 2, frame_format::json, 10))
      for (auto& m : p.messages())
        if (m.conversation_id() == group)
          out.push_back(m.server_sequence());
    return out;
  };
  CHECK(synced("cat", 1) == seqs{1, 2, 3, 4, 5, 6, 7});
  CHECK(synced("ben", 0) == seqs{1, 2, 3, 4, 5});
  CHECK(synced("dan", 0) == seqs{3, 4, 5, 6, 7});
  CHECK(synced("eve", 0).empty());

  // After a restart the group is the same: ben still cannot send, cat (now
  // an admin) can add eve, who then gets the next message only.
  dev.clear();
  n.restart();
  device_view cat;
  cat.token = n.login("cat", "tablet");
  cat.connect(n.port);
  device_view eve;
  eve.token = n.login("eve", "tablet");
  eve.connect(n.port);
  device_view ben;
  ben.token = n.login("ben", "tablet");
  ben.connect(n.port);
  CHECK(error_of(ben.call(send_to(group, "b2", "x")))
        == v1::Error::CODE_FORBIDDEN);
  REQUIRE(cat.call(change_frame(group, v1::Membership::CHANGE_ADDED, {"eve"}))
            ->has_accepted());
  REQUIRE(cat.call(send_to(group, "c2", "m4"))->has_accepted());
  eve.drain();
  CHECK(eve.take() == seqs{8, 9});
  ben.drain();
  CHECK(ben.take().empty());
}

} // namespace

TEST_CASE("a_group_of_five_with_two_devices_each_sees_exactly_its_window") {
  five_users_two_devices({});
}

// The same, with the group counted as large from its third member on: its
// messages go through the fan-out shards instead of the device registry.
TEST_CASE("the_same_group_fanned_out_by_shards_sees_exactly_the_same") {
  five_users_two_devices({"--parley.large-group-members=2",
                          "--parley.fanout-shards=3",
                          "--parley.fanout-batch=1"});
}

TEST_CASE("a_group_create_retried_with_its_client_request_id_makes_one_group") {
  node n;
  device_view ann;
  ann.token = n.account("ann", "phone");
  n.account("ben", "phone");
  device_view bob;
  bob.token = n.account("bob", "phone");
  ann.connect(n.port);
  auto create = create_frame("trip", {"ben"});
  create.mutable_group_create()->set_client_request_id("create-7f3a");
  auto first = ann.call(create);
  REQUIRE(first);
  REQUIRE(first->has_accepted());
  auto group = first->accepted().conversation_id();
  CHECK(first->accepted().server_sequence() == 1);
  CHECK_FALSE(first->accepted().deduplicated());
  REQUIRE(ann.call(send_to(group, "a1", "hello"))->has_accepted());
  // The connection dropped before the answer: the retry on a new one gets
  // the first answer, and the group keeps its one create and message.
  ann.connect(n.port);
  auto again = ann.call(create);
  REQUIRE(again);
  REQUIRE(again->has_accepted());
  CHECK(again->accepted().conversation_id() == group);
  CHECK(again->accepted().server_sequence() == 1);
  CHECK(again->accepted().sent_at_ms() == first->accepted().sent_at_ms());
  CHECK(again->accepted().deduplicated());
  auto info = group_info_of(ann, group);
  CHECK(info.head_sequence() == 2);
  CHECK(info.member_count() == 2);
  // Also after a restart (the creator and request id are on disk).
  restart_on_new_device(n, ann, "ann");
  auto after = ann.call(create);
  REQUIRE(after);
  REQUIRE(after->has_accepted());
  CHECK(after->accepted().conversation_id() == group);
  CHECK(after->accepted().deduplicated());
  // The same request id from another user is another user's create.
  bob.connect(n.port);
  auto other = bob.call(create);
  REQUIRE(other);
  REQUIRE(other->has_accepted());
  CHECK(other->accepted().conversation_id() != group);
  CHECK_FALSE(other->accepted().deduplicated());
  // Without a request id every create is a new group; an oversized id is
  // refused.
  auto plain1 = ann.call(create_frame("a", {}));
  auto plain2 = ann.call(create_frame("a", {}));
  REQUIRE(plain1);
  REQUIRE(plain2);
  REQUIRE(plain1->has_accepted());
  REQUIRE(plain2->has_accepted());
  CHECK(plain1->accepted().conversation_id()
        != plain2->accepted().conversation_id());
  auto big = create_frame("b", {});
  big.mutable_group_create()->set_client_request_id(std::string(129, 'r'));
  CHECK(error_of(ann.call(big)) == v1::Error::CODE_BAD_FRAME);
  CHECK(group_info_of(ann, group).head_sequence() == 2);
}

TEST_CASE("a_group_change_retried_with_its_client_request_id_changes_once") {
  node n;
  device_view ann, ben;
  ann.token = n.account("ann", "phone");
  ben.token = n.account("ben", "phone");
  n.account("cat", "phone");
  ann.connect(n.port);
  ben.connect(n.port);
  auto created = ann.call(create_frame("trip", {"ben"}));
  REQUIRE(created);
  REQUIRE(created->has_accepted());
  auto group = created->accepted().conversation_id();
  auto add = change_frame(group, v1::Membership::CHANGE_ADDED, {"cat"});
  add.mutable_group_change()->set_client_request_id("add-cat-1");
  auto first = ann.call(add);
  REQUIRE(first);
  REQUIRE(first->has_accepted());
  CHECK(first->accepted().server_sequence() == 2);
  CHECK_FALSE(first->accepted().deduplicated());
  // The answer was lost with the connection: the retry on a new one gets
  // it, and the group has one ADDED event (before, "already members").
  ann.connect(n.port);
  auto again = ann.call(add);
  REQUIRE(again);
  REQUIRE(again->has_accepted());
  CHECK(again->accepted().server_sequence() == 2);
  CHECK(again->accepted().server_message_id()
        == first->accepted().server_message_id());
  CHECK(again->accepted().deduplicated());
  // Also after a restart, from the same user's other device.
  ben.ws.reset();
  restart_on_new_device(n, ann, "ann");
  auto after = ann.call(add);
  REQUIRE(after);
  REQUIRE(after->has_accepted());
  CHECK(after->accepted().server_sequence() == 2);
  CHECK(after->accepted().deduplicated());
  auto info = group_info_of(ann, group);
  CHECK(info.head_sequence() == 2);
  CHECK(info.member_count() == 3);
  // An oversized request id is refused; the group is unchanged.
  auto big = change_frame(group, v1::Membership::CHANGE_ADDED, {"cat"});
  big.mutable_group_change()->set_client_request_id(std::string(129, 'r'));
  CHECK(error_of(ann.call(big)) == v1::Error::CODE_BAD_FRAME);
  CHECK(group_info_of(ann, group).head_sequence() == 2);
}
