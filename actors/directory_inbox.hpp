#pragma once

// Internal to the directory: its inbox side (issue 21, item 7). Inbox rows
// go to the inbox of the owner of their partition, and a request about a
// user's inbox to the inbox of the owner of the user's partition: this
// node's inbox (the conversations' projection, conversation_deps), or the
// owner's directory if known, else unavailable (retryable).

#include "actors/directory.hpp"

namespace parley::directory_inbox {

using self_ptr = directory_actor::stateful_pointer<directory_state>;

caf::result<uint64_t> rows(self_ptr self, inbox_rows& r);

caf::result<std::vector<inbox_entry>> query(self_ptr self, inbox_query& q);

} // namespace parley::directory_inbox
