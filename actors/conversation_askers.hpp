#pragma once

// Who waits on the conversation's send path: a send's asker (a CAF request's
// response promise, or a tagged send's sender and tag; see
// runtime/core/tagged_messages.hpp) and what runs when a commit through the
// store writer is answered or times out. Part of conversation_send.hpp.

#include <cstdint>
#include <functional>

#include <caf/error.hpp>
#include <caf/local_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/conversation_actor.hpp"

namespace parley {

/// Who waits for a send's answer: the asker's response promise, or (a
/// tagged send) the asker and its tag.
struct send_asker {
  caf::typed_response_promise<send_result> rp;
  bool tagged = false;    ///< a tagged send, answered by message to `to`
  send_answer_actor to{}; ///< null: an anonymous tagged send (no answer)
  uint64_t tag = 0;
  caf::local_actor* from = nullptr; ///< the conversation (sends the answer)
  /// store::send_digest of this asker's request (0 for membership changes:
  /// it matches any). Askers of one key that differ from the answered
  /// request get CONFLICT instead of its answer.
  uint64_t digest = 0;
  /// It took a token of the large group's bucket: given back if it is
  /// answered as a retry.
  bool took_group_token = false;

  void deliver(const send_result& res) {
    if (!tagged)
      rp.deliver(res);
    else if (to)
      caf::unsafe_send_as(from, to, send_atom::value,
                          send_answer{tag, res, caf::error{}});
  }

  void deliver(const caf::error& err) {
    if (!tagged)
      rp.deliver(err);
    else if (to)
      caf::unsafe_send_as(from, to, send_atom::value,
                          send_answer{tag, send_result{}, err});
  }
};

/// What a commit through the store writer runs when it is answered (an
/// empty error: durable) or timed out (caf::sec::request_timeout).
using commit_done = std::function<void(const caf::error&)>;

} // namespace parley
