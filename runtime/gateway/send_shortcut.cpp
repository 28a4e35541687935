#include "runtime/gateway/send_shortcut.hpp"

#include <caf/send.hpp>

#include "actors/node_metrics.hpp"
#include "runtime/gateway/frame_codec.hpp"
#include "runtime/gateway/ws_sink.hpp"

namespace parley::gateway {

namespace {

constexpr int send_body = v1::ClientFrame::kSend;

/// The answer of one direct send; unanswered at its end (the conversation
/// ended with the send in its mailbox), it tells the client to retry.
class direct_answer : public send_answer {
public:
  direct_answer(std::shared_ptr<send_shortcut> via, uint32_t rid,
                conversation_id conv, std::string cmid)
    : via_(std::move(via)), rid_(rid), conv_(conv), cmid_(std::move(cmid)) {
  }

  ~direct_answer() override {
    if (!answered_)
      failed(caf::make_error(caf::sec::request_receiver_down));
  }

  void accepted(const send_result& res) override {
    answered_ = true;
    if (res.deduplicated)
      via_->refund();
    via_->answer(accepted_frame(rid_, conv_, cmid_, res));
  }

  void failed(const caf::error& err) override {
    answered_ = true;
    via_->forget(conv_); // it may have ended; the actor finds it again
    via_->answer(error_frame(rid_, err));
  }

private:
  std::shared_ptr<send_shortcut> via_;
  uint32_t rid_;
  conversation_id conv_;
  std::string cmid_;
  bool answered_ = false;
};

} // namespace

const char* refused_send(const v1::Send& s) {
  if (s.kind() == v1::MESSAGE_KIND_MEDIA || s.has_media())
    return "media messages are not supported yet: nothing was stored";
  return nullptr;
}

send_shortcut::send_shortcut(std::shared_ptr<ws_link> link,
                             std::shared_ptr<metrics> stats,
                             std::shared_ptr<rate_limiter> limiter,
                             size_t max_frame_bytes)
  : link_(link),
    stats_(std::move(stats)),
    limiter_(std::move(limiter)),
    max_frame_bytes_(max_frame_bytes),
    last_frame_(clock::now().time_since_epoch().count()) {
}

bool send_shortcut::take(const std::string& data, bool binary) {
  // One reading for both: the frame's arrival (steady_clock, like
  // last_frame_) and the send's start for the latency metric.
  auto now = steady_ns();
  last_frame_.store(now, std::memory_order_relaxed);
  if (!binary || !open_.load(std::memory_order_acquire)
      || backlog_.load(std::memory_order_acquire) != 0
      || peek_client_frame_body(data) != send_body)
    return false;
  auto d = decode_client_frame(data, frame_format::binary, max_frame_bytes_);
  if (!d.ok)
    return false; // the actor answers with the error
  auto& s = d.frame.send();
  if (refused_send(s))
    return false; // the actor answers with the error
  conversation_actor conv;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = conversations_.find(s.conversation_id());
    if (i == conversations_.end())
      return false;
    conv = i->second;
  }
  stats_->frames_in++;
  auto rid = d.frame.request_id();
  if (limiter_) {
    auto& lim = limiter_->limits();
    auto wait = limiter_->take(send_device_key_, lim.send_device);
    if (wait == 0)
      wait = limiter_->take(send_user_key_, lim.send_user);
    if (wait != 0) {
      stats_->rate_limited++;
      answer(rate_limited_frame(rid, wait));
      return true;
    }
  }
  // The sender is the authenticated device, whatever the frame says.
  send_request req{s.conversation_id(), user_, device_,
                   s.client_message_id(), static_cast<int32_t>(s.kind()),
                   s.payload(), now, s.reply_to_sequence()};
  auto ans = std::make_shared<direct_answer>(shared_from_this(), rid,
                                             s.conversation_id(),
                                             s.client_message_id());
  stats_->direct_sends++;
  caf::anon_send(conv, send_atom::value, std::move(req),
                 send_answer_ref{std::move(ans)});
  return true;
}

std::shared_ptr<void> send_shortcut::dispatch_guard() {
  return std::shared_ptr<void>(nullptr, [self = shared_from_this()](void*) {
    self->backlog_.fetch_sub(1, std::memory_order_acq_rel);
  });
}

void send_shortcut::open(user_id user, device_id device,
                         std::string send_device_key,
                         std::string send_user_key) {
  user_ = user;
  device_ = device;
  send_device_key_ = std::move(send_device_key);
  send_user_key_ = std::move(send_user_key);
  open_.store(true, std::memory_order_release);
}

void send_shortcut::learn(conversation_id id, const conversation_actor& hdl) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (conversations_.size() >= 1024)
    conversations_.clear();
  conversations_.emplace(id, hdl);
}

void send_shortcut::forget(conversation_id id) {
  std::lock_guard<std::mutex> guard{mtx_};
  conversations_.erase(id);
}

void send_shortcut::refund() {
  if (!limiter_)
    return;
  auto& lim = limiter_->limits();
  limiter_->refund(send_device_key_, lim.send_device);
  limiter_->refund(send_user_key_, lim.send_user);
}

void send_shortcut::answer(const v1::ServerFrame& f) {
  stats_->frames_out++;
  if (f.body_case() == v1::ServerFrame::kError)
    stats_->errors_out++;
  else if (f.body_case() == v1::ServerFrame::kAccepted)
    stats_->messages_accepted++;
  if (auto link = link_.lock())
    link->send(encode_server_frame(f, frame_format::binary), true);
}

} // namespace parley::gateway
