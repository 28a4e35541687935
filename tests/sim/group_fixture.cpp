#include "group_fixture.hpp"

#include <map>
#include <sstream>

#include "parley/v1/wire.pb.h"

namespace parley::group_sim {

delivery_actor::behavior_type
recorder(delivery_actor::pointer,
         std::shared_ptr<std::vector<delivered>> out,
         std::shared_ptr<std::vector<receipt_pushed>> receipts) {
  return {
    [out](deliver_atom, const stored_message& m,
          const std::vector<user_id>& to) {
      out->push_back({m, std::set<user_id>(to.begin(), to.end())});
    },
    [receipts](receipt_atom, const receipt_event& ev,
               const std::vector<user_id>& to) {
      receipts->push_back({ev, to});
    },
  };
}

std::string check_against_log(const std::vector<delivered>& out) {
  std::map<sequence, const delivered*> by_seq;
  for (auto& d : out) {
    // A restart re-emits what its watermark did not cover: at least once,
    // but the same message to the same members.
    if (auto i = by_seq.find(d.msg.seq); i != by_seq.end()) {
      if (i->second->to != d.to || i->second->msg.payload != d.msg.payload)
        return "sequence " + std::to_string(d.msg.seq)
               + " delivered twice, differently";
      continue;
    }
    by_seq[d.msg.seq] = &d;
  }
  if (!by_seq.empty() && by_seq.rbegin()->first != by_seq.size())
    return "sequences have a gap";
  std::set<user_id> now;
  std::set<user_id> admins;
  for (auto& [seq, d] : by_seq) {
    auto& m = d->msg;
    std::set<user_id> expect;
    if (m.kind == message_kind_membership) {
      v1::Membership ev;
      if (!ev.ParseFromString(m.payload))
        return "bad membership payload";
      std::set<user_id> targets(ev.target_user_ids().begin(),
                                ev.target_user_ids().end());
      auto actor = ev.actor_user_id();
      if (ev.change() != v1::Membership::CHANGE_CREATED && !admins.count(actor)
          && ev.change() != v1::Membership::CHANGE_LEFT)
        return "a non-admin changed the group at " + std::to_string(seq);
      switch (ev.change()) {
        case v1::Membership::CHANGE_CREATED:
          now = targets;
          now.insert(actor);
          admins = {actor};
          expect = now;
          break;
        case v1::Membership::CHANGE_ADDED:
          now.insert(targets.begin(), targets.end());
          expect = now;
          break;
        case v1::Membership::CHANGE_REMOVED:
        case v1::Membership::CHANGE_LEFT:
          expect = now;
          for (auto u : targets) {
            now.erase(u);
            admins.erase(u);
          }
          break;
        case v1::Membership::CHANGE_PROMOTED:
          admins.insert(targets.begin(), targets.end());
          expect = now;
          break;
        case v1::Membership::CHANGE_DEMOTED:
          for (auto u : targets)
            admins.erase(u);
          expect = now;
          break;
        default:
          expect = now;
      }
    } else {
      if (!now.count(m.sender_user))
        return "message " + std::to_string(seq) + " from non-member "
               + std::to_string(m.sender_user);
      expect = now;
    }
    if (d->to != expect) {
      std::ostringstream os;
      os << "sequence " << seq << " went to {";
      for (auto u : d->to)
        os << u << ' ';
      os << "}, members were {";
      for (auto u : expect)
        os << u << ' ';
      os << "}";
      return os.str();
    }
  }
  return {};
}

} // namespace parley::group_sim
