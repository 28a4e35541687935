#include "runtime/gateway/connection.hpp"
#include "runtime/gateway/connection_detail.hpp"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/disconnect.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/keys.hpp"

namespace parley::gateway {

namespace connection_detail {

void reply(self_ptr self, const v1::ServerFrame& f, frame_format fmt) {
  auto& st = self->state;
  st.deps.stats->frames_out++;
  if (f.body_case() == v1::ServerFrame::kError)
    st.deps.stats->errors_out++;
  st.link->send(encode_server_frame(f, fmt), fmt == frame_format::binary);
}

void reply_error(self_ptr self, uint32_t request_id, frame_format fmt,
                 v1::Error::Code code, std::string message, bool retryable) {
  reply(self, error_frame(request_id, code, std::move(message), retryable),
        fmt);
}

bool within_limit(self_ptr self, uint32_t rid, frame_format fmt,
                  const std::string& key, const bucket_spec& spec,
                  double cost) {
  auto& st = self->state;
  if (!st.deps.limiter)
    return true;
  auto wait = st.deps.limiter->take(key, spec, cost);
  if (wait == 0)
    return true;
  st.deps.stats->rate_limited++;
  reply(self, rate_limited_frame(rid, wait), fmt);
  return false;
}

void reply_error(self_ptr self, uint32_t request_id, frame_format fmt,
                 const caf::error& err) {
  reply(self, error_frame(request_id, err), fmt);
}

uint64_t await_answer(self_ptr self, awaited_answer a) {
  auto& t = self->state.awaited;
  auto tag = t.add(self->clock().now(), std::move(a));
  if (t.arm())
    self->delayed_send(self, t.period(), expire_atom::value);
  return tag;
}

} // namespace connection_detail

namespace {

using namespace connection_detail;
using namespace std::chrono_literals;

constexpr uint32_t protocol_version = 1;

/// Sends a Disconnect frame with `cause` as its code and the reconnect
/// advice that fits it, then closes the socket with the same code, and
/// ends the actor: nothing the client sends meanwhile (a second Hello
/// during the close handshake, say) is handled. The frame goes out even
/// past a full outbound queue (a slow consumer).
void disconnect(self_ptr self, disconnect_cause cause,
                const std::string& reason) {
  auto& st = self->state;
  auto code = code_of(cause);
  v1::ServerFrame f;
  f.set_event_seq(st.sink ? st.sink->next_event_seq() : ++st.event_seq);
  auto* d = f.mutable_disconnect();
  d->set_code(code);
  d->set_reason(reason);
  d->set_reconnect(should_reconnect(cause));
  st.deps.stats->frames_out++;
  st.link->close_with(encode_server_frame(f, st.push_format),
                      st.push_format == frame_format::binary,
                      static_cast<uint16_t>(code), reason);
  self->quit();
}

/// Takes `limit` as the user's send limit (count 0: the node's default).
/// An operator's limit has a bucket of its own (its key names the limit):
/// a changed limit starts with a full bucket, not with another rate's
/// debt.
void use_send_limit(connection_state& st, send_limit limit) {
  st.who.send = limit;
  st.send_user_key = "send/user/" + std::to_string(st.who.user);
  if (!limit.is_default())
    st.send_user_key += "/" + std::to_string(limit.count) + "/"
                        + std::to_string(limit.period_ms);
}

/// The user's send bucket: the limit an operator set for the user (stored
/// with the account, it came with the principal or an update since), else
/// the node's per-user default. "N per period" allows a burst of N.
bucket_spec user_send_spec(const connection_state& st) {
  auto& own = st.who.send;
  if (own.is_default() || !st.deps.limiter)
    return st.deps.limiter ? st.deps.limiter->limits().send_user
                           : bucket_spec{};
  return bucket_spec{static_cast<double>(own.count) * 1000.0
                       / static_cast<double>(own.period_ms),
                     static_cast<double>(std::max<uint64_t>(own.count, 1))};
}

void on_hello(self_ptr self, const v1::ClientFrame& frame, frame_format fmt) {
  auto& st = self->state;
  auto rid = frame.request_id();
  auto& hello = frame.hello();
  if (st.authenticated || st.authenticating) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "already sent Hello");
    return;
  }
  auto max_v = hello.max_version() ? hello.max_version() : hello.min_version();
  if (hello.min_version() > protocol_version || max_v < protocol_version) {
    reply_error(self, rid, fmt, v1::Error::CODE_UNSUPPORTED_VERSION,
                "this server speaks protocol version 1");
    disconnect(self, disconnect_cause::unsupported_version,
               "unsupported protocol version");
    return;
  }
  auto token = !hello.auth_token().empty() ? hello.auth_token()
                                           : st.header_token;
  if (token.empty()) {
    reply_error(self, rid, fmt, v1::Error::CODE_UNAUTHENTICATED,
                "no token: send auth_token in Hello or an Authorization "
                "header");
    disconnect(self, disconnect_cause::unauthenticated, "unauthenticated");
    return;
  }
  st.authenticating = true;
  st.push_format = fmt;
  self->request(st.deps.accounts, 30s, auth_atom::value, token)
    .then(
      [self, rid, fmt](principal& who) {
        auto& st = self->state;
        st.who = who;
        st.send_device_key = "send/device/" + std::to_string(who.user) + "/"
                             + std::to_string(who.device);
        use_send_limit(st, who.send);
        // Attach to the device's actor first: from Welcome on, the device
        // receives its messages on this connection.
        st.sink = std::make_shared<ws_sink>(st.link, fmt, st.deps.stats);
        self
          ->request(st.deps.registry, 30s, caf::join_atom::value, who.user,
                    who.device, caf::actor_cast<caf::actor>(self))
          .then(
            [self, rid, fmt](device_actor& dev) {
              auto& st = self->state;
              st.authenticating = false;
              st.authenticated = true;
              st.device = dev;
              // The device's mailbox may live on another node (the owner
              // of the user's partition): if it goes away (that node died,
              // or the connection to it dropped), this connection would
              // get nothing more; close it so the client reconnects and
              // syncs.
              self->monitor(dev);
              self->send(dev, caf::update_atom::value,
                         st.who.read_receipts);
              v1::ServerFrame f;
              f.set_request_id(rid);
              auto* w = f.mutable_welcome();
              w->set_protocol_version(protocol_version);
              w->set_server_build("parleyd 0.1");
              w->set_user_id(st.who.user);
              w->set_device_id(st.who.device);
              w->set_session_id(std::to_string(self->id()));
              w->set_heartbeat_ms(st.deps.heartbeat_ms);
              w->set_max_frame_bytes(
                static_cast<uint32_t>(st.deps.max_frame_bytes));
              w->set_max_server_frame_bytes(
                static_cast<uint32_t>(st.deps.max_server_frame_bytes));
              reply(self, f, fmt);
              self->delayed_send(self,
                                 std::chrono::milliseconds(st.deps.heartbeat_ms),
                                 caf::tick_atom::value);
            },
            [self, rid, fmt](caf::error& err) {
              self->state.authenticating = false;
              reply_error(self, rid, fmt, err);
              disconnect(self, disconnect_cause::device_unavailable,
                         "device unavailable; reconnect and sync");
            });
      },
      [self, rid, fmt](caf::error& err) {
        self->state.authenticating = false;
        reply_error(self, rid, fmt, err);
        disconnect(self, disconnect_cause::unauthenticated,
                   "unauthenticated");
      });
}

void on_send(self_ptr self, const v1::ClientFrame& frame, frame_format fmt) {
  auto& st = self->state;
  auto rid = frame.request_id();
  auto& s = frame.send();
  if (auto why = refused_send(s)) {
    reply_error(self, rid, fmt, v1::Error::CODE_UNIMPLEMENTED, why);
    return;
  }
  if (st.deps.limiter) {
    auto& lim = st.deps.limiter->limits();
    if (!within_limit(self, rid, fmt, st.send_device_key, lim.send_device)
        || !within_limit(self, rid, fmt, st.send_user_key,
                         user_send_spec(st)))
      return;
  }
  // The sender is the authenticated device, whatever the frame says.
  send_request req{s.conversation_id(), st.who.user, st.who.device,
                   s.client_message_id(), static_cast<int32_t>(s.kind()),
                   s.payload(), steady_ns(), s.reply_to_sequence()};
  // Routed by the conversation's id, as a tagged message (no CAF clock
  // entry per send). A timeout is a retryable error: the client retries
  // with the same clientMessageId and gets the original answer if the send
  // was kept.
  auto tag = await_answer(self, awaited_answer{rid, fmt, false,
                                               s.conversation_id(),
                                               s.client_message_id()});
  self->send(st.deps.directory, send_atom::value,
             tagged_send{tag, std::move(req)});
}

/// Answers the Send frame `a` waited for.
void on_send_answer(self_ptr self, const awaited_answer& a,
                    const send_result& r, const caf::error& err) {
  if (err) {
    reply_error(self, a.request_id, a.fmt, err);
    return;
  }
  auto& st = self->state;
  if (r.deduplicated && st.deps.limiter) {
    // A retry of an accepted send costs no send budget.
    auto& lim = st.deps.limiter->limits();
    st.deps.limiter->refund(st.send_device_key, lim.send_device);
    st.deps.limiter->refund(st.send_user_key, user_send_spec(st));
  }
  st.deps.stats->messages_accepted++;
  reply(self, accepted_frame(a.request_id, a.conv, a.client_message_id, r),
        a.fmt);
}

/// Schedules the deadline tick if one is due.
void arm_awaited(self_ptr self) {
  auto& t = self->state.awaited;
  if (t.arm())
    self->delayed_send(self, t.period(), expire_atom::value);
}

/// The deadline tick: what waited past timeouts::client gets the retryable
/// error a request timeout gave (UNAVAILABLE); a late answer is dropped.
void on_expire(self_ptr self) {
  auto& t = self->state.awaited;
  t.tick();
  t.expire(self->clock().now(), [self](uint64_t, awaited_answer& a) {
    auto timeout = caf::make_error(caf::sec::request_timeout);
    if (a.receipt)
      on_receipt_answer(self, a, timeout);
    else
      on_send_answer(self, a, send_result{}, timeout);
  });
  arm_awaited(self);
}

void on_open_direct(self_ptr self, const v1::ClientFrame& frame,
                    frame_format fmt) {
  auto& st = self->state;
  auto rid = frame.request_id();
  auto fail = [self, rid, fmt](caf::error& err) {
    reply_error(self, rid, fmt, err);
  };
  self
    ->request(st.deps.accounts, 30s, caf::resolve_atom::value,
              frame.open_direct().username())
    .then(
      [self, rid, fmt, fail](user_id peer) {
        auto& st = self->state;
        auto me = st.who.user;
        auto conv_id = direct_conversation_id(me, peer);
        auto& dir = st.deps.directory;
        // Both parties are members of their direct conversation.
        self->request(dir, timeouts::commit, caf::join_atom::value, conv_id, me)
          .then(
            [self, rid, fmt, fail, peer, conv_id](sequence) {
              self
                ->request(self->state.deps.directory, timeouts::commit,
                          caf::join_atom::value, conv_id, peer)
                .then(
                  [self, rid, fmt, peer, conv_id](sequence) {
                    v1::ServerFrame f;
                    f.set_request_id(rid);
                    auto* d = f.mutable_direct_opened();
                    d->set_conversation_id(conv_id);
                    d->set_peer_user_id(peer);
                    reply(self, f, fmt);
                  },
                  fail);
            },
            fail);
      },
      fail);
}

void handle_frame(self_ptr self, const std::string& data, bool binary) {
  auto& st = self->state;
  st.deps.stats->frames_in++;
  auto fmt = binary ? frame_format::binary : frame_format::json;
  auto d = decode_client_frame(data, fmt, st.deps.max_frame_bytes);
  if (!d.ok) {
    reply_error(self, 0, fmt, d.code, d.message);
    return;
  }
  auto& frame = d.frame;
  auto rid = frame.request_id();
  using body = v1::ClientFrame;
  if (frame.body_case() == body::kPing) {
    v1::ServerFrame f;
    f.set_request_id(rid);
    f.mutable_pong();
    reply(self, f, fmt);
    return;
  }
  if (frame.body_case() == body::kHello) {
    on_hello(self, frame, fmt);
    return;
  }
  if (!st.authenticated) {
    reply_error(self, rid, fmt, v1::Error::CODE_UNAUTHENTICATED,
                "send Hello with a token first");
    return;
  }
  switch (frame.body_case()) {
    case body::kSend:
      on_send(self, frame, fmt);
      break;
    case body::kOpenDirect:
      on_open_direct(self, frame, fmt);
      break;
    case body::kSync:
      on_sync(self, frame, fmt);
      break;
    case body::kDelivered:
      on_delivered(self, frame, fmt);
      break;
    case body::kRead:
      on_read(self, frame, fmt);
      break;
    case body::kSetConversationFlags:
      on_set_flags(self, frame, fmt);
      break;
    case body::kGroupCreate:
      on_group_create(self, frame, fmt);
      break;
    case body::kGroupChange:
      on_group_change(self, frame, fmt);
      break;
    case body::kGetGroup:
      on_get_group(self, frame, fmt);
      break;
    default:
      reply_error(self, rid, fmt, v1::Error::CODE_UNIMPLEMENTED,
                  "not implemented yet");
  }
}

} // namespace

connection_actor::behavior_type
connection_impl(self_ptr self, connection_deps deps,
                std::shared_ptr<ws_link> link, std::string authorization) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.link = std::move(link);
  const std::string bearer = "Bearer ";
  if (authorization.rfind(bearer, 0) == 0)
    st.header_token = authorization.substr(bearer.size());
  st.deps.stats->connections_open++;
  st.deps.stats->connections_total++;
  st.last_frame = self->clock().now();
  self->attach_functor([stats = st.deps.stats](const caf::error&) {
    stats->connections_open--;
  });
  self->delayed_send(self, st.deps.hello_timeout, caf::timeout_atom::value);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.device && dm.source == caf::actor_cast<caf::actor_addr>(st.device))
      disconnect(self, disconnect_cause::device_unavailable,
                 "device unavailable; reconnect and sync");
  });
  return {
    [self](frame_atom, std::string& data, bool binary) {
      self->state.last_frame = self->clock().now();
      handle_frame(self, data, binary);
    },
    [self](caf::close_atom, uint32_t cause, std::string& reason) {
      disconnect(self, static_cast<disconnect_cause>(cause), reason);
    },
    // Pushes: a false push means the session is gone or its queue
    // overflowed, and the session tells this actor (a slow consumer).
    [self](deliver_atom, const stored_message& msg) {
      if (auto& sink = self->state.sink)
        sink->push(msg);
    },
    [self](fanout_atom, const stored_message& msg) {
      if (auto& sink = self->state.sink)
        sink->push_bulk(msg);
    },
    [self](receipt_atom, const receipt_event& ev) {
      if (auto& sink = self->state.sink)
        sink->push(ev);
    },
    [self](caf::update_atom, const inbox_entry& e) {
      if (auto& sink = self->state.sink)
        sink->push(e);
    },
    [self](caf::leave_atom) { self->quit(); },
    [self](caf::update_atom, bool read_receipts) {
      auto& st = self->state;
      st.who.read_receipts = read_receipts;
      if (st.device)
        self->send(st.device, caf::update_atom::value, read_receipts);
    },
    [self](caf::update_atom, send_limit limit) {
      use_send_limit(self->state, limit); // from the next Send on
    },
    [self](caf::tick_atom) {
      auto& st = self->state;
      auto silence = self->clock().now() - st.last_frame;
      if (silence > 2 * std::chrono::milliseconds(st.deps.heartbeat_ms)) {
        disconnect(self, disconnect_cause::heartbeat_timeout,
                   "no frame for two heartbeats");
        return;
      }
      if (st.device)
        self->send(st.device, refresh_atom::value); // still holds the device
      self->delayed_send(self, std::chrono::milliseconds(st.deps.heartbeat_ms),
                         caf::tick_atom::value);
    },
    [self](send_atom, send_answer& a) {
      auto awaited = self->state.awaited.take(a.tag);
      if (!awaited) {
        // Timed out already (the client got UNAVAILABLE and may retry with
        // the same key), as CAF drops a response after its timeout.
        spdlog::debug("late send answer dropped tag={}", a.tag);
        return;
      }
      on_send_answer(self, *awaited, a.result, a.err);
    },
    [self](receipt_atom, receipt_answer& a) {
      auto awaited = self->state.awaited.take(a.tag);
      if (!awaited) {
        spdlog::debug("late receipt answer dropped tag={}", a.tag);
        return;
      }
      on_receipt_answer(self, *awaited, a.err);
    },
    [self](expire_atom) { on_expire(self); },
    [self](caf::timeout_atom) {
      if (self->state.authenticated || self->state.authenticating)
        return;
      reply_error(self, 0, self->state.push_format,
                  v1::Error::CODE_UNAUTHENTICATED, "no Hello within 10 s");
      disconnect(self, disconnect_cause::no_hello, "hello timeout");
    },
  };
}

} // namespace parley::gateway
