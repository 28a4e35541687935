#pragma once

// The conversation's send path: admit (checks, idempotency), sequence,
// commit (through the store writer, in epochs), answer, emit. Owns
// conversation_send_state. Answers leave in sequence order; a send key
// maps to at most one sequence within the idempotency window.
//
// Calls: groups' membership queries and plan/write/apply of a change (a
// change is sequenced and committed here, alone, in order with the sends
// around it), delivery/projection/fan-out (emit), upkeep's outbox and sweep
// hooks, receipts' note_sender, the store reader and writer. Its commit
// serves groups (a direct join) and upkeep (a sweep) too. Internals shared
// by its sources (conversation_admit.cpp, conversation_commit.cpp,
// conversation_send.cpp) are in conversation_send_detail.hpp.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

#include <caf/error.hpp>

#include "actors/conversation_actor.hpp"
#include "actors/conversation_askers.hpp"
#include "actors/send_keys.hpp"
#include "runtime/core/reply_deadlines.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley {

/// Sequences, sends between arrival and answer, and answer caches (data
/// only).
struct conversation_send_state {
  using key = send_key;

  /// A send between arrival and its answer.
  struct pending {
    enum class phase { lookup, duplicate, fresh, failed } ph = phase::lookup;
    send_request req;
    std::vector<send_asker> promises;
    idempotency_hit hit;
    caf::error err;
    stored_message msg; ///< once a sequence is assigned
    /// store::send_digest of the request (0 for membership changes: a
    /// repeat of their key is always a retry).
    uint64_t digest = 0;
    bool done = false;
    /// A membership change instead of a send (then `req` is unused).
    std::optional<group_change> change;
  };
  using pending_ptr = std::shared_ptr<pending>;

  sequence_allocator seqs;
  sequence head = 0;
  /// A membership change is being committed: sends wait behind it.
  bool changing = false;
  std::deque<pending_ptr> queue;           ///< arrival order, not yet assigned
  std::map<sequence, pending_ptr> inflight; ///< assigned, commit under way
  std::unordered_map<key, pending_ptr, send_key_hash> by_key; ///< unanswered
  recent_sends recent;                      ///< committed keys (bounded)
  committed_keys committed; ///< hashes of this incarnation's keys
  /// Until then, a key committed by an earlier incarnation may still be
  /// inside its window, so unknown keys must be looked up in the store.
  int64_t old_keys_live_until_ms = 0;
  spreading_bucket group_sends; ///< large groups only
  /// Jitter of the group bucket's retry hints (seeded by the id: the
  /// simulations replay).
  std::minstd_rand group_jitter;
  /// Commits sent to the store writer (send path and receipts), by tag,
  /// until answered or timed out (timeouts::commit).
  reply_deadlines<commit_done> commits{timeouts::commit};
};

namespace conversation_send {

/// Sizes the caches and seeds the jitter (at spawn; needs id and deps).
void init(conversation_state& st);

/// Takes the head of a loaded conversation.
void load(conversation_state& st, const conversation_snapshot& snap);

/// Checks a send (membership, size, kind, reply reference, a large
/// group's budget) and admits it, or answers `rp` with the refusal.
void handle_send(conversation_self self, send_request& req, send_asker rp);

/// Queues a membership change; one with a request id (not a create, which
/// dedupes by its own record) is deduplicated as a send is.
void handle_change(conversation_self self, group_change& c,
                   caf::typed_response_promise<send_result> rp);

/// Sends `batch` to the store writer in the current epoch. A failure of the
/// current epoch rolls the send path back before `on_fail` runs; a timeout
/// ends the actor (the outcome is unknown).
void commit(conversation_self self, write_batch batch,
            std::function<void()> on_ok,
            std::function<void(const caf::error&)> on_fail);

/// Sends `batch` to the store writer as a tagged commit of `writer` in
/// `epoch`; `done` runs once with its answer, or with
/// caf::sec::request_timeout after timeouts::commit (to 1.2 x that). A
/// late answer is dropped.
void commit_as(conversation_self self, uint64_t writer, uint64_t epoch,
               write_batch batch, commit_done done);

/// The store writer answered a tagged commit.
void on_commit_answer(conversation_self self, commit_answer& a);

/// The commits' deadline tick: times out what is due, re-arms while
/// commits wait.
void on_expire(conversation_self self);

/// Emits a committed message for delivery (and tells upkeep).
void emit(conversation_self self, const stored_message& msg);

/// Refuses with `why` every send and change queued or in flight.
void fail_all(conversation_self self, const caf::error& why);

// -- queries ------------------------------------------------------------------

/// The highest committed sequence.
sequence head(const conversation_state& st);

/// The sequence the next message will get.
sequence next_sequence(const conversation_state& st);

/// True while a commit of a message is in flight.
bool committing(const conversation_state& st);

/// True while anything waits: queued, in flight, or a change.
bool busy(const conversation_state& st);

/// Sends in flight and queued.
size_t in_flight(const conversation_state& st);
size_t queued(const conversation_state& st);

/// Keys of sends not yet answered.
std::vector<send_key> unanswered_keys(const conversation_state& st);

} // namespace conversation_send

} // namespace parley
