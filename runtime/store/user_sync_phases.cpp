// user_sync's phases (user_sync.hpp): the inbox, the receipts and the
// messages of a page, from the partitions' answers.

#include "runtime/store/user_sync.hpp"

#include <algorithm>
#include <string>

#include "runtime/core/errors.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"

namespace parley::store {

user_sync::asks user_sync::begin_phase() {
  if (pos_.phase == sync_phase::inbox) {
    // Conversation-id order from page to page; the first page sums the
    // unread counts of the whole inbox.
    std::vector<conversation_id> rest;
    for (auto& c : convs_)
      if (!pos_.started || c.first > pos_.conv)
        rest.push_back(c.first);
    size_t bound = wire_size_bound(inbox_entry{});
    size_t n = std::max<size_t>(1, left() / bound);
    n = std::min(n, rest.size());
    inbox_rest_ = rest.size();
    inbox_ids_.assign(rest.begin(), rest.begin() + n);
    probe_ids_.clear();
    if (first_page_)
      for (auto& c : convs_)
        probe_ids_.push_back(c.first);
    else
      probe_ids_ = inbox_ids_;
    stage_ = stage::inbox_rows;
    asks out;
    if (probe_ids_.empty())
      return out;
    user_reads r;
    r.partition = user_partition(user_);
    r.kind = user_read_inbox;
    r.user = user_;
    r.convs = probe_ids_;
    out.users.push_back(std::move(r));
    stage_ = stage::inbox_rows;
    return out;
  }
  if (pos_.phase == sync_phase::receipts) {
    rdone_ = at(sync_phase::receipts, pos_.started, pos_.conv, 0,
                pos_.cursors);
    rnext_ = 0;
    stage_ = stage::receipts;
    return {};
  }
  stage_ = stage::messages;
  budget_ = pos_.page_size;
  eligible_.clear();
  for (auto& [conv, m] : convs_) {
    if (pos_.started && conv < pos_.conv)
      continue;
    bool resumed = pos_.started && conv == pos_.conv;
    if (pos_.cursors_only && !resumed && !cursor_of(conv))
      continue;
    eligible_.emplace_back(conv, resumed);
  }
  mnext_ = 0;
  mwidth_ = std::min(window_, first_messages_window);
  return {};
}

user_sync::asks user_sync::inbox_probes() {
  stage_ = stage::probes;
  std::vector<conv_query> qs;
  for (auto conv : probe_ids_) {
    auto* m = member_of(conv);
    auto& row = rows_[conv];
    conv_query q;
    q.conv = conv;
    q.kind = conv_read_probe;
    q.user = user_;
    q.joined_at = m->joined_at_sequence;
    q.left_at = m->left_at_sequence;
    q.stored = row.first;
    q.entry = row.second;
    q.entry.conversation = conv;
    qs.push_back(q);
  }
  return group(std::move(qs));
}

void user_sync::inbox_done() {
  std::vector<inbox_entry> entries;
  for (auto conv : probe_ids_)
    entries.push_back(answers_[conv].entry);
  answers_.clear();
  sort_inbox(entries);
  if (first_page_) {
    for (auto& e : entries) {
      page_.total_unread += e.unread;
      if (std::binary_search(inbox_ids_.begin(), inbox_ids_.end(),
                             e.conversation))
        page_.inbox.push_back(e);
    }
  } else {
    page_.inbox = std::move(entries);
  }
  size_t bound = wire_size_bound(inbox_entry{});
  for (size_t i = 0; i < page_.inbox.size(); ++i)
    put(bound);
  if (inbox_ids_.size() < inbox_rest_) {
    stop(at(sync_phase::inbox, true, inbox_ids_.back(), 0, pos_.cursors));
    return;
  }
  pos_ = at(sync_phase::receipts, false, 0, 0, pos_.cursors);
  begin_phase();
}

user_sync::asks user_sync::receipts_window() {
  // Groups show their senders aggregates, pushed live; other members'
  // cursors there are not listed (a large group has thousands).
  rwin_.clear();
  while (rnext_ < convs_.size() && rwin_.size() < window_) {
    auto conv = convs_[rnext_++].first;
    if ((pos_.started && conv <= pos_.conv) || !is_direct(conv))
      continue;
    rwin_.push_back(conv);
  }
  if (rwin_.empty()) {
    pos_ = at(sync_phase::messages, false, 0, 0, pos_.cursors);
    begin_phase();
    return {};
  }
  stage_ = stage::sharing;
  std::vector<conv_query> qs;
  for (auto conv : rwin_) {
    conv_query q;
    q.conv = conv;
    q.kind = conv_read_receipts;
    q.user = user_;
    qs.push_back(q);
  }
  return group(std::move(qs));
}

user_sync::asks user_sync::sharing_asks() {
  stage_ = stage::receipts_done;
  asks out;
  if (!req_.read_receipts)
    return out;
  std::map<uint32_t, user_reads> by;
  for (auto conv : rwin_)
    for (auto& rc : answers_[conv].receipts) {
      if (rc.user == user_ || rc.kind != keys::receipt_read
          || sharing_.count(rc.user))
        continue;
      sharing_[rc.user] = false; // unless the answer says so
      auto p = user_partition(rc.user);
      auto& r = by[p];
      r.partition = p;
      r.kind = user_read_sharing;
      r.users.push_back(rc.user);
    }
  for (auto& [p, r] : by)
    out.users.push_back(std::move(r));
  return out;
}

void user_sync::receipts_done() {
  for (auto conv : rwin_) {
    std::vector<receipt_event> evs;
    for (auto& rc : answers_[conv].receipts) {
      if (rc.user == user_)
        continue;
      if (rc.kind == keys::receipt_read
          && (!req_.read_receipts || !sharing_[rc.user]))
        continue; // read state only if the reader shares it, and in 1:1
                  // only to users who share their own
      evs.push_back(receipt_event{conv, rc.user, rc.kind, rc.seq, 0, true});
    }
    size_t need = 0;
    for (auto& ev : evs)
      need += wire_size_bound(ev);
    if (!evs.empty() && !fits(need)) {
      stop(rdone_);
      return;
    }
    if (!evs.empty())
      put(need);
    for (auto& ev : evs)
      page_.receipts.push_back(ev);
    rdone_.started = true;
    rdone_.conv = conv;
  }
  answers_.clear();
  stage_ = stage::receipts;
}

user_sync::asks user_sync::messages_window() {
  if (mnext_ >= eligible_.size()) {
    finish();
    return {};
  }
  mat_ = mnext_;
  mend_ = std::min(eligible_.size(), mnext_ + mwidth_);
  mnext_ = mend_;
  mwidth_ = std::min(window_, mwidth_ * 2);
  mopen_ = false;
  std::vector<conv_query> qs;
  for (size_t i = mat_; i < mend_; ++i) {
    auto [conv, resumed] = eligible_[i];
    auto* m = member_of(conv);
    conv_query q;
    q.conv = conv;
    q.kind = conv_read_messages;
    q.user = user_;
    q.joined_at = m->joined_at_sequence;
    q.left_at = m->left_at_sequence;
    if (resumed) {
      q.start = conv_start_resume;
      q.after = pos_.after;
    } else if (auto c = cursor_of(conv)) {
      q.start = conv_start_cursor;
      q.after = *c;
    } else {
      q.start = conv_start_recent;
    }
    qs.push_back(q);
  }
  stage_ = stage::merge;
  answers_.clear();
  return group(std::move(qs), budget_, left(), items_);
}

user_sync::asks user_sync::merge() {
  // Resumes in `conv` after `after`; the cursors of later ones go along.
  auto stop_in = [this](conversation_id conv, sequence after) {
    cursor_list later;
    for (auto& c : pos_.cursors)
      if (c.first > conv)
        later.push_back(c);
    stop(at(sync_phase::messages, true, conv, after, std::move(later)));
  };
  for (; mat_ < mend_; ++mat_, mopen_ = false) {
    auto conv = eligible_[mat_].first;
    auto& a = answers_[conv];
    if (!mopen_) {
      if (a.ahead) {
        fail(caf::make_error(errc::cursor_ahead,
                             "cursor past head in conversation "
                               + std::to_string(conv)));
        return {};
      }
      mopen_ = true;
      mafter_ = a.after;
      midx_ = 0;
    }
    while (mafter_ < a.last) {
      if (budget_ == 0) {
        stop_in(conv, mafter_);
        return {};
      }
      if (midx_ == a.messages.size()) {
        if (a.complete)
          break;
        // The partition stopped at a message that did not fit its share
        // of the page, or at its share of the budget: the page has no less
        // on it than that share, so it stops here too.
        stop_in(conv, mafter_);
        return {};
      }
      auto& msg = a.messages[midx_];
      auto need = wire_size_bound(msg);
      if (!fits(need)) {
        stop_in(conv, mafter_);
        return {};
      }
      put(need);
      mafter_ = msg.seq;
      page_.messages.push_back(std::move(msg));
      ++midx_;
      --budget_;
    }
  }
  stage_ = stage::messages;
  return {};
}

} // namespace parley::store
