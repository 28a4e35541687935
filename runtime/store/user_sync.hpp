#pragma once

// One page of a user's sync, built by the user's side from answers of the
// partitions (issue 21, item 4); the one sync page builder. Every read is a
// request that names its partition (runtime/core/sync_reads.hpp): the
// user's own rows from the user's partition, heads, receipt cursors, inbox
// probes and message runs from each conversation's partition (one request
// per partition and step), read-receipt settings from the other users'
// partitions. It reads nothing itself: the user actor (actors/user.hpp)
// sends what `next` asks, hands every answer to `take`, and asks `next`
// again until `done`; sync_by_id.hpp does the same by function call and
// says what a page holds. Tested by tests/unit/sync_paging_test.cpp,
// sync_split_test.cpp and tests/sim/user_sync_test.cpp (against a model of
// what a complete sync returns).

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/core/sync_reads.hpp"
#include "runtime/store/sync_paging.hpp"

namespace parley::store {

class user_sync {
public:
  /// Requests to send, at most one per partition and kind.
  struct asks {
    std::vector<conv_reads> convs;
    std::vector<user_reads> users;

    bool empty() const {
      return convs.empty() && users.empty();
    }
  };

  /// Conversations per step of the receipts and messages phases.
  static constexpr size_t default_window = 256;
  /// Conversations in the first window of a page's messages phase.
  static constexpr size_t first_messages_window = 4;

  /// A page of `user`'s sync; ids are placed among `partitions`.
  user_sync(user_id user, sync_request req, uint32_t partitions,
            size_t window = default_window);

  /// Runs until it needs answers (returned) or the page is done (empty).
  asks next();

  /// Hands over the answer to one of the last asks.
  void take(conv_answers a);
  void take(user_answers a);

  bool done() const {
    return done_;
  }

  /// The page or the error, once done.
  caf::expected<sync_page> result();

private:
  enum class stage {
    start, memberships, heads, inbox_rows, probes, inbox_done,
    receipts, sharing, receipts_done, messages, merge
  };

  using cursor_list = std::vector<std::pair<conversation_id, sequence>>;

  asks step();
  void fail(caf::error err);
  bool cursors_ok();
  void finish();
  uint32_t conv_partition(conversation_id conv) const;
  uint32_t user_partition(user_id user) const;
  asks group(std::vector<conv_query> qs, uint64_t budget = 0,
             uint64_t room = 0, uint64_t items = 0) const;
  sync_position at(sync_phase phase, bool started, conversation_id conv,
                   sequence after, cursor_list cursors) const;
  void stop(const sync_position& next);
  const sequence* cursor_of(conversation_id conv) const;
  const member* member_of(conversation_id conv) const;
  bool fits(size_t n) const {
    return items_ == 0 || used_ + n <= room_;
  }
  size_t left() const {
    return room_ > used_ ? room_ - used_ : 0;
  }
  void put(size_t n) {
    used_ += n;
    ++items_;
  }
  asks begin_phase();
  asks inbox_probes();
  void inbox_done();
  asks receipts_window();
  asks sharing_asks();
  void receipts_done();
  asks messages_window();
  asks merge();

  user_id user_;
  sync_request req_;
  uint32_t partitions_;
  size_t window_;
  stage stage_ = stage::start;
  bool done_ = false;
  caf::error err_;
  bool first_page_ = true;
  /// The first page's cursors are checked against the heads its inbox
  /// probes read (every member's), not by a step of head reads of its own.
  bool heads_from_probes_ = false;
  std::vector<std::pair<conversation_id, member>> convs_;
  sync_position pos_;
  size_t room_ = 0;
  size_t used_ = 0;
  size_t items_ = 0;
  sync_page page_;
  std::map<conversation_id, conv_answer> answers_;
  // inbox
  std::vector<conversation_id> probe_ids_; ///< entries to list or sum
  std::vector<conversation_id> inbox_ids_; ///< entries on this page
  size_t inbox_rest_ = 0;
  std::map<conversation_id, std::pair<bool, inbox_entry>> rows_;
  // receipts
  sync_position rdone_;
  size_t rnext_ = 0;          ///< index into convs_ of the next window
  std::vector<conversation_id> rwin_;
  std::map<user_id, bool> sharing_;
  // messages
  std::vector<std::pair<conversation_id, bool>> eligible_; ///< (conv, resumed)
  size_t mnext_ = 0;  ///< index into eligible_ of the next window
  /// Conversations in the next window: from first_messages_window, twice
  /// as many each step up to window_ (every partition asked may read up
  /// to the page's budget, so a wide first window reads many pages' worth).
  size_t mwidth_ = 0;
  size_t mend_ = 0;   ///< end of the window being merged
  size_t mat_ = 0;    ///< the conversation being merged
  bool mopen_ = false; ///< mat_'s loop has started
  sequence mafter_ = 0;
  size_t midx_ = 0;   ///< next message of answers_[mat_]
  uint64_t budget_ = 0;
};

} // namespace parley::store
