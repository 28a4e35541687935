#pragma once

// How long an actor waits for a reply that may never come. A request that
// may cross a node (or whose receiver may end without answering) waits at
// most this long; a timeout (caf::sec::request_timeout) is a retryable
// error, mapped to UNAVAILABLE for the client, and the requester must leave
// nothing half-done behind it (see each call site). No request in Parley
// waits with caf::infinite (tests/unit/layering_check.sh).

#include <chrono>

#include <caf/timespan.hpp>

namespace parley::timeouts {

/// A question to another actor that answers from memory or one store read
/// (a lookup, a route, a page of sync).
inline constexpr caf::timespan ask = std::chrono::seconds(10);

/// A client's request on the hot path (a send, a receipt), which the
/// client retries with the same key. These requests are tagged messages
/// with one deadline tick per actor (reply_deadlines.hpp), not CAF timed
/// requests: CAF 0.17 registers every timed request with its clock thread
/// and keeps it until it fires, which on this path cost half the accept
/// rate (tools/bench/RESULTS.md). Long enough for a write the disk holds
/// for a while; short so that a client hears of a lost request soon.
inline constexpr caf::timespan client = std::chrono::seconds(5);

/// A write through the store writer: a group commit with a synced write,
/// which this machine's disk sometimes holds for 100+ ms; generous so that
/// only a writer that is gone or wedged times out.
inline constexpr caf::timespan commit = std::chrono::seconds(30);

/// Work that scans many records (an outbox replay, a sweep, a rebuild).
inline constexpr caf::timespan scan = std::chrono::seconds(120);

/// Before an idempotent write that failed or timed out is tried again by
/// its writer on its own (delivered cursors, receipt cursors): short, as
/// a timeout has already waited `commit`; long enough that a failing disk
/// is not hammered.
inline constexpr caf::timespan retry = std::chrono::milliseconds(100);

} // namespace parley::timeouts
