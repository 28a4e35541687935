#pragma once

// Message fields that never leave the node: shared pointers to sinks and
// prepared frames, and the inbox's event batches. Their `inspect` only names
// the type (CAF 0.17 needs one for every message type); between nodes they
// would travel empty.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/error.hpp>

#include "runtime/core/messages.hpp"

namespace parley {

// -- delivery to devices ---------------------------------------------------------

/// A message about to be pushed to many devices (a large group): its
/// encodings are made once, by the first sink that needs each, and shared.
struct prepared_message {
  stored_message msg;
  mutable std::mutex mtx;
  mutable std::string encoded[2]; ///< by wire format (sink-defined index)
  mutable bool has_encoded[2] = {false, false};

  explicit prepared_message(stored_message m) : msg(std::move(m)) {
  }
};

using prepared_ptr = std::shared_ptr<const prepared_message>;

/// A prepared message as a message field (local only, like a sink).
struct prepared_ref {
  prepared_ptr ptr;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, prepared_ref&) {
  return f(caf::meta::type_name("prepared_ref"));
}

/// Where a device actor pushes messages: the outbound side of the
/// connection that currently holds the device. The gateway implements it
/// (encode one Message frame onto the socket's bounded queue). Thread-safe,
/// never blocks.
class device_sink {
public:
  virtual ~device_sink();

  /// Pushes a prepared message (same contract as a stored one); sinks
  /// that can reuse its shared encoding override this.
  virtual bool push(const prepared_message& pm) {
    return push(pm.msg);
  }

  /// Pushes one message. False if the connection is gone or its outbound
  /// queue overflowed (it is then closing; the device catches up by sync).
  virtual bool push(const stored_message& msg) = 0;

  /// Pushes one receipt update (same contract).
  virtual bool push(const receipt_event& ev) = 0;

  /// Pushes the user's changed inbox entry (same contract).
  virtual bool push(const inbox_entry& e) = 0;
};

/// A sink as a message field. Local only: between nodes it travels as a
/// null pointer (a remote device pushes through its own node's gateway).
struct device_sink_ref {
  std::shared_ptr<device_sink> ptr;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, device_sink_ref&) {
  return f(caf::meta::type_name("device_sink_ref"));
}

// -- answers outside the actor system ------------------------------------------

/// The answer to one send that arrived without an actor to answer
/// (the gateway's I/O thread hands a Send straight to its conversation).
/// Exactly one of the two is called, from the conversation's thread; an
/// implementation that is destroyed without either (the send was dropped:
/// its conversation ended with the send in its mailbox) should tell its
/// client to retry.
class send_answer {
public:
  virtual ~send_answer();

  virtual void accepted(const send_result& res) = 0;

  virtual void failed(const caf::error& err) = 0;
};

/// A send_answer as a message field. Local only, like device_sink_ref.
struct send_answer_ref {
  std::shared_ptr<send_answer> ptr;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_answer_ref&) {
  return f(caf::meta::type_name("send_answer_ref"));
}

// -- the inbox projection ------------------------------------------------------

/// Projection events the inbox supervisor gathers and hands to its worker
/// in one message (local only): a message (with the users it reached) or a
/// receipt, in the order they were emitted.
struct projection_event {
  bool is_message = true;
  stored_message msg;
  receipt_event receipt;
  std::vector<user_id> to;
};

struct projection_batch {
  std::vector<projection_event> events;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, projection_batch&) {
  return f(caf::meta::type_name("projection_batch"));
}

} // namespace parley
