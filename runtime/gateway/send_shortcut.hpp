#pragma once

// The direct path for Send frames. Once a connection is authenticated and
// one of its sends to a conversation was accepted through the connection
// actor, the session's I/O thread hands later binary Send frames for that
// conversation straight to the conversation actor, whose answer goes
// straight onto the session's socket. That skips the connection actor twice
// per message (the frame and the answer): two mailbox hops and the wake-ups
// they cost, on the path every message takes.
//
// Order: a frame takes the direct path only when every frame handed to the
// connection actor before it has been passed on (`handed` counts them until
// their dispatch guards are gone), so one device's sends reach a
// conversation in the order they were read. Everything else (text frames,
// other frame types, malformed frames, a conversation not yet learnt) goes
// through the actor as before.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "actors/conversation.hpp"
#include "parley/v1/wire.pb.h"
#include "runtime/gateway/metrics.hpp"
#include "runtime/gateway/rate_limiter.hpp"
#include "runtime/gateway/server.hpp"

namespace parley::gateway {

/// Why a Send cannot be taken as it stands, or nullptr. A media message
/// is refused (UNIMPLEMENTED) until media are built: storing it would
/// throw its reference away.
const char* refused_send(const v1::Send& s);

class send_shortcut : public std::enable_shared_from_this<send_shortcut> {
public:
  using clock = std::chrono::steady_clock;

  send_shortcut(std::shared_ptr<ws_link> link, std::shared_ptr<metrics> stats,
                std::shared_ptr<rate_limiter> limiter, size_t max_frame_bytes);

  // -- the session's I/O thread -------------------------------------------------

  /// Takes a frame the session read. True: it went to its conversation, or
  /// a rate limit refused it with an Error frame. False: hand it to the
  /// connection actor, with handed().
  bool take(const std::string& data, bool binary);

  /// Counts a frame handed to the connection actor; the actor holds
  /// dispatch_guard() until it has passed the frame on.
  void handed() {
    backlog_.fetch_add(1, std::memory_order_acq_rel);
  }

  // -- the connection actor ---------------------------------------------------------

  /// Held while a handed frame is on its way; its end ends the count.
  std::shared_ptr<void> dispatch_guard();

  /// Opens the path for the authenticated device (once).
  void open(user_id user, device_id device, std::string send_device_key,
            std::string send_user_key);

  /// Closes it for good (the connection is ending or revoked).
  void close() {
    open_.store(false, std::memory_order_release);
  }

  /// A conversation that accepted a send of this device.
  void learn(conversation_id id, const conversation_actor& hdl);

  /// Forgets a conversation (an error: it may have ended).
  void forget(conversation_id id);

  /// When the session last read a frame (the heartbeat check).
  clock::time_point last_frame() const {
    return clock::time_point{clock::duration{last_frame_.load()}};
  }

  // -- answers (the conversation's thread) ------------------------------------------

  void answer(const v1::ServerFrame& f);

  /// A send was answered from the idempotency record: gives back the
  /// tokens it took (a retry of an accepted message costs nothing).
  void refund();

private:
  std::weak_ptr<ws_link> link_;
  std::shared_ptr<metrics> stats_;
  std::shared_ptr<rate_limiter> limiter_;
  size_t max_frame_bytes_;
  std::atomic<clock::rep> last_frame_;
  std::atomic<int> backlog_{0};
  std::atomic<bool> open_{false};
  /// Set before open_; read only after it.
  user_id user_ = 0;
  device_id device_ = 0;
  std::string send_device_key_;
  std::string send_user_key_;
  std::mutex mtx_;
  std::unordered_map<conversation_id, conversation_actor> conversations_;
};

} // namespace parley::gateway
