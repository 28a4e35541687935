#pragma once

// Tagged requests and answers of the hot paths (a client's send and
// receipt, a commit through the store writer): ordinary asynchronous
// messages instead of CAF requests, so that no CAF clock entry is made per
// request (see runtime/core/reply_deadlines.hpp). The asker picks `tag`
// (from its reply_deadlines table) and sends the request; the callee
// answers the request's sender (a router forwards it with the sender kept)
// with the same tag and the outcome: a result, or `err` (then the result is
// left default). The asker's deadline stands in for a request timeout.
// The order of fields in each `inspect` is the BASP wire format between
// nodes: append only.

#include <cstdint>

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/core/write_batch.hpp"

namespace parley {

/// (send_atom, tagged_send): a send, answered by (send_atom, send_answer).
struct tagged_send {
  uint64_t tag = 0;
  send_request req;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tagged_send& x) {
  return f(caf::meta::type_name("tagged_send"), x.tag, x.req);
}

/// The answer to a tagged_send.
struct send_answer {
  uint64_t tag = 0;
  send_result result;
  caf::error err; ///< set: refused or failed (result unused)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_answer& x) {
  return f(caf::meta::type_name("send_answer"), x.tag, x.result, x.err);
}

/// (receipt_atom, tagged_receipt): moves `user`'s receipt cursor of `kind`
/// in `conv` (sent from device `device`; `shared` false: a read kept from
/// others), answered by (receipt_atom, receipt_answer).
struct tagged_receipt {
  uint64_t tag = 0;
  conversation_id conv = 0;
  user_id user = 0;
  device_id device = 0;
  int32_t kind = 0;
  sequence seq = 0;
  bool shared = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tagged_receipt& x) {
  return f(caf::meta::type_name("tagged_receipt"), x.tag, x.conv, x.user,
           x.device, x.kind, x.seq, x.shared);
}

/// The answer to a tagged_receipt: the cursor, never lower than before.
struct receipt_answer {
  uint64_t tag = 0;
  sequence cursor = 0;
  caf::error err;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, receipt_answer& x) {
  return f(caf::meta::type_name("receipt_answer"), x.tag, x.cursor, x.err);
}

/// (commit_atom, tagged_commit): commits `batch` for `writer` in `epoch`,
/// answered by (commit_atom, commit_answer) once durable or failed.
struct tagged_commit {
  uint64_t tag = 0;
  uint64_t writer = 0;
  uint64_t epoch = 0;
  write_batch batch;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tagged_commit& x) {
  return f(caf::meta::type_name("tagged_commit"), x.tag, x.writer, x.epoch,
           x.batch);
}

/// The answer to a tagged_commit: the number of the synced write that made
/// it durable, or `err` (then nothing of it was written).
struct commit_answer {
  uint64_t tag = 0;
  uint64_t synced = 0;
  caf::error err;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_answer& x) {
  return f(caf::meta::type_name("commit_answer"), x.tag, x.synced, x.err);
}

} // namespace parley
