#include "actors/store_reader.hpp"

#include "runtime/store/conversation_store.hpp"
#include "runtime/store/sync_reads.hpp"

namespace parley {

namespace {

/// Unwraps an expected into a CAF result (value or error).
template <class T>
caf::result<T> to_result(caf::expected<T>&& x) {
  if (!x)
    return std::move(x.error());
  return std::move(*x);
}

} // namespace

store_reader_actor::behavior_type
store_reader_impl(store_reader_actor::stateful_pointer<store_reader_state> self,
                  std::shared_ptr<kv_backend> kv, uint64_t sync_recent) {
  self->state.kv = std::move(kv);
  self->state.sync_recent = sync_recent;
  return {
    [=](lookup_atom, conversation_id conv, user_id user, device_id device,
        const std::string& cmid) {
      return to_result(
        store::lookup_idempotency(*self->state.kv, conv, user, device, cmid));
    },
    [=](fetch_atom, conversation_id conv, sequence after, uint64_t limit) {
      return to_result(
        store::fetch_messages(*self->state.kv, conv, after, limit));
    },
    [=](outbox_atom) {
      return to_result(store::undispatched_conversations(*self->state.kv));
    },
    [=](outbox_atom, uint32_t p, uint32_t partitions) {
      return to_result(
        store::undispatched_conversations(*self->state.kv, p, partitions));
    },
    [=](sweep_atom, conversation_id conv, sequence after, int64_t cutoff_ms,
        uint64_t limit) {
      return to_result(store::find_expired_idempotency(
        *self->state.kv, conv, after, cutoff_ms, limit));
    },
    [=](ack_atom, user_id user, conversation_id conv) {
      return to_result(store::ack_limit(*self->state.kv, user, conv));
    },
    [=](fetch_atom, const conv_reads& reads) {
      return to_result(store::answer_conv_reads(*self->state.kv, reads,
                                                self->state.sync_recent));
    },
    [=](fetch_atom, const user_reads& reads) {
      return to_result(store::answer_user_reads(*self->state.kv, reads));
    },
  };
}

} // namespace parley
