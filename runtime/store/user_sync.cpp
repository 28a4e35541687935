// user_sync (user_sync.hpp): the steps of a page and what it asks
// partitions for; the phases themselves are in user_sync_phases.cpp.

#include "runtime/store/user_sync.hpp"

#include <algorithm>
#include <string>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"

namespace parley::store {

user_sync::user_sync(user_id user, sync_request req, uint32_t partitions,
                     size_t window)
  : user_(user),
    req_(std::move(req)),
    partitions_(partitions),
    window_(std::max<size_t>(window, 1)) {
}

uint32_t user_sync::conv_partition(conversation_id conv) const {
  return partition_of(placement_key::conversation(conv), partitions_);
}

uint32_t user_sync::user_partition(user_id user) const {
  return partition_of(placement_key::user(user), partitions_);
}

void user_sync::fail(caf::error err) {
  err_ = std::move(err);
  done_ = true;
}

bool user_sync::cursors_ok() {
  for (auto& [conv, seq] : pos_.cursors) {
    if (!member_of(conv)) {
      fail(caf::make_error(errc::forbidden, "not a member of conversation "
                                              + std::to_string(conv)));
      return false;
    }
    if (first_page_ && seq > answers_[conv].head) {
      fail(caf::make_error(errc::cursor_ahead,
                           "cursor past head in conversation "
                             + std::to_string(conv)));
      return false;
    }
  }
  return true;
}

void user_sync::finish() {
  done_ = true;
}

caf::expected<sync_page> user_sync::result() {
  if (err_)
    return err_;
  return std::move(page_);
}

void user_sync::take(conv_answers a) {
  for (auto& x : a.answers)
    answers_[x.conv] = std::move(x);
}

void user_sync::take(user_answers a) {
  if (stage_ == stage::memberships) {
    for (size_t i = 0; i < a.convs.size() && i < a.members.size(); ++i)
      convs_.emplace_back(a.convs[i], a.members[i]);
    return;
  }
  if (stage_ == stage::inbox_rows) {
    std::set<conversation_id> stored(a.stored.begin(), a.stored.end());
    for (auto& e : a.entries)
      rows_[e.conversation] = {stored.count(e.conversation) > 0, e};
    return;
  }
  for (auto u : a.sharing)
    sharing_[u] = true;
}

user_sync::asks user_sync::group(std::vector<conv_query> qs, uint64_t budget,
                                 uint64_t room, uint64_t items) const {
  std::map<uint32_t, conv_reads> by;
  for (auto& q : qs) {
    auto p = conv_partition(q.conv);
    auto& r = by[p];
    r.partition = p;
    r.budget = budget;
    r.room = room;
    r.items = items;
    r.queries.push_back(std::move(q));
  }
  asks out;
  for (auto& [p, r] : by)
    out.convs.push_back(std::move(r));
  return out;
}

sync_position user_sync::at(sync_phase phase, bool started,
                            conversation_id conv, sequence after,
                            cursor_list cursors) const {
  sync_position p;
  p.phase = phase;
  p.started = started;
  p.cursors_only = pos_.cursors_only;
  p.page_size = pos_.page_size;
  p.conv = conv;
  p.after = after;
  p.cursors = std::move(cursors);
  return p;
}

void user_sync::stop(const sync_position& next) {
  page_.continuation = encode_continuation(next);
  finish();
}

const sequence* user_sync::cursor_of(conversation_id conv) const {
  auto i = std::lower_bound(pos_.cursors.begin(), pos_.cursors.end(),
                            std::make_pair(conv, sequence{0}));
  return i != pos_.cursors.end() && i->first == conv ? &i->second : nullptr;
}

const member* user_sync::member_of(conversation_id conv) const {
  auto i = std::lower_bound(convs_.begin(), convs_.end(),
                            std::make_pair(conv, member{}),
                            [](auto& x, auto& y) { return x.first < y.first; });
  return i != convs_.end() && i->first == conv ? &i->second : nullptr;
}

user_sync::asks user_sync::next() {
  asks out;
  while (!done_ && out.empty())
    out = step();
  return out;
}

user_sync::asks user_sync::step() {
  switch (stage_) {
    case stage::start: {
      stage_ = stage::memberships;
      asks out;
      user_reads r;
      r.partition = user_partition(user_);
      r.kind = user_read_memberships;
      r.user = user_;
      out.users.push_back(std::move(r));
      return out;
    }
    case stage::memberships: {
      first_page_ = req_.continuation.empty();
      if (!first_page_) {
        auto pos = decode_continuation(req_.continuation);
        if (!pos) {
          fail(caf::make_error(errc::bad_request,
                               "bad continuation: send one from the last "
                               "SyncPage unchanged, or start again without"));
          return {};
        }
        pos_ = std::move(*pos);
      } else {
        std::map<conversation_id, sequence> cursors;
        for (size_t i = 0; i < req_.cursor_conversations.size()
                           && i < req_.cursor_sequences.size();
             ++i)
          cursors[req_.cursor_conversations[i]] = req_.cursor_sequences[i];
        pos_.cursors.assign(cursors.begin(), cursors.end());
        pos_.page_size = std::clamp<uint32_t>(
          req_.page_size ? req_.page_size : default_sync_page_size, 1,
          max_sync_page_size);
        pos_.cursors_only = req_.cursors_only;
        if (req_.cursors_only)
          pos_.phase = sync_phase::messages;
      }
      auto reserve = continuation_reserve(pos_.cursors);
      if (reserve > max_continuation_bytes) {
        fail(caf::make_error(
          errc::too_large,
          std::to_string(pos_.cursors.size())
            + " cursors do not fit one continuation (at most "
            + std::to_string(max_continuation_bytes)
            + " bytes): split them over several Syncs, the first as usual "
              "(it carries the inbox), the others with cursorsOnly"));
        return {};
      }
      size_t limit = req_.max_frame_bytes;
      room_ = limit > sync_frame_overhead + reserve
                ? limit - sync_frame_overhead - reserve
                : 0;
      stage_ = stage::heads;
      // The first page checks each cursor against its head (up to the
      // first that is not a member's: that one fails the request); when
      // it lists the inbox, the probes read every member's head.
      heads_from_probes_ = first_page_ && pos_.phase == sync_phase::inbox;
      std::vector<conv_query> qs;
      if (first_page_ && !heads_from_probes_)
        for (auto& [conv, seq] : pos_.cursors) {
          if (!member_of(conv))
            break;
          conv_query q;
          q.conv = conv;
          q.kind = conv_read_head;
          q.user = user_;
          qs.push_back(q);
        }
      return group(std::move(qs));
    }
    case stage::heads:
      if (!heads_from_probes_ && !cursors_ok())
        return {};
      answers_.clear();
      return begin_phase();
    case stage::inbox_rows:
      return inbox_probes();
    case stage::probes:
      if (heads_from_probes_ && !cursors_ok())
        return {};
      inbox_done();
      return {};
    case stage::inbox_done:
    case stage::receipts:
      return receipts_window();
    case stage::sharing:
      return sharing_asks();
    case stage::receipts_done:
      receipts_done();
      return {};
    case stage::messages:
      return messages_window();
    case stage::merge:
      return merge();
  }
  return {};
}

} // namespace parley::store
