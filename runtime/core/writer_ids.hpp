#pragma once

// Fence ids of the store writer (actors/store_writer.hpp): whose commit a
// batch is. After a failed write the writer fences that id at the failed
// epoch and refuses the id's later commits of that epoch or an older one,
// so a writer's sequences never land after a hole. An id must therefore
// name what the writer owns, not the actor that happens to own it now: the
// same on every node and after every restart (never a node-local actor id),
// and distinct between writers whose order matters.
//
// Layout (a format: fences are in memory only, but logs and tests name
// these values; change them only together with the pins in
// tests/unit/writer_ids_test.cpp):
//   conversation(c)  c itself. Group ids are below 2^62 (bits 63..62 =
//                    00) and direct ids have bit 63 set (see
//                    direct_conversation_id), so bits 63..62 of a
//                    conversation id are never 01.
//   everything else  bits 63..62 = 01 (never a conversation id), bits
//                    61..59 the kind below, bits 58..0 the low 59 bits of a
//                    mix of the identity.
//
// The mix is SplitMix64's finalizer and gamma (runtime/core/mix.hpp, as
// placement uses).
// Two identities of one kind can share an id (59 bits of a hash). That is
// harmless: only the send path's ordering depends on its fence, and
// conversations use their own id, which no hashed id can equal. Hashed ids
// belong to writers whose writes are idempotent and ordered per writer
// (max-merged cursors, whole-value inbox rows), so two writers sharing a
// fence can only see a spurious, retryable storage_fenced refusal (nothing
// written), or one writer's newer epoch lifting the other's fence early,
// which lets through a write that is correct in any order. Never a wrong
// write.

#include <cstdint>

#include "runtime/core/mix.hpp"

namespace parley::writer_ids {

/// Kinds of hashed writer ids (bits 61..59). DO NOT CHANGE the values.
inline constexpr uint64_t kind_receipts = 1;
inline constexpr uint64_t kind_device = 2;
inline constexpr uint64_t kind_inbox = 3;
inline constexpr uint64_t kind_memberships = 4;
inline constexpr uint64_t kind_accounts = 7;


/// Bits 63..62 = 01, `kind` in 61..59, the low 59 bits of `hash` below.
constexpr uint64_t tagged(uint64_t kind, uint64_t hash) {
  return (uint64_t{1} << 62) | ((kind & 7) << 59)
         | (hash & ((uint64_t{1} << 59) - 1));
}

/// The send path of conversation `conv` (sequences, group changes, sweeps):
/// the conversation id itself; the writer's load_atom clears its fence.
constexpr uint64_t conversation(uint64_t conv) {
  return conv;
}

/// The receipt cursors of conversation `conv` (max-merged; no order with
/// the send path): fmix(conv + gamma). Also cleared by load_atom.
constexpr uint64_t receipts(uint64_t conv) {
  return tagged(kind_receipts, mix::fmix(conv + mix::golden_gamma));
}

/// The delivered cursors of device `dev` of `user` (max-merged):
/// fmix(fmix(user + gamma) + dev).
constexpr uint64_t device(uint64_t user, uint64_t dev) {
  return tagged(kind_device,
                mix::fmix(mix::fmix(user + mix::golden_gamma) + dev));
}

/// The inbox rows written by the inbox of `shard` (whole values): mix::fmix(shard
/// + gamma). One inbox per node writes today: shard 0; a per-partition
/// inbox passes its partition.
constexpr uint64_t inbox(uint64_t shard) {
  return tagged(kind_inbox, mix::fmix(shard + mix::golden_gamma));
}

/// Membership events' writes (runtime/core/membership_events.hpp): the
/// index rows ('y', versioned puts) that the owner of user `id`'s
/// partition writes, or the erasures of acked events ('g') by conversation
/// `id`. Any order of these is correct: fmix(id + gamma).
constexpr uint64_t memberships(uint64_t id) {
  return tagged(kind_memberships, mix::fmix(id + mix::golden_gamma));
}

/// Account, device and token records (the accounts actor): kind 7 with all
/// 59 bits set.
constexpr uint64_t accounts() {
  return tagged(kind_accounts, ~uint64_t{0});
}

} // namespace parley::writer_ids
