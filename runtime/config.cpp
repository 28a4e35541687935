#include "runtime/config.hpp"

#include <caf/config_option_adder.hpp>

#include "actors/errors.hpp"
#include "actors/type_ids.hpp"

namespace parley {

node_config::node_config() {
  add_message_types<caf::id_block::parley>();
  add_error_category(caf::atom("parley"),
                     [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                       std::string out = "parley: ";
                       out += to_string(static_cast<errc>(code));
                       if (!ctx.empty())
                         out += " " + to_string(ctx);
                       return out;
                     });
  opt_group{custom_options_, "parley"}
    .add(data_dir, "data", "directory of the node's LevelDB database")
    .add(log_level, "log-level",
         "trace, debug, info, warn, error, critical or off")
    .add(idempotency_window_s, "idempotency-window-s",
         "seconds a repeated client_message_id returns the original answer")
    .add(idempotency_cache, "idempotency-cache",
         "recent send keys each conversation keeps in memory")
    .add(max_payload_bytes, "max-payload-bytes",
         "largest message payload accepted")
    .add(watermark_delay_ms, "watermark-delay-ms",
         "how long an idle conversation waits before persisting its "
         "outbox watermark")
    .add(max_batch_ops, "max-batch-ops",
         "key/value operations after which a group commit writes early")
    .add(sweep_interval_s, "idempotency-sweep-interval-s",
         "seconds between a busy conversation's sweeps of idempotency "
         "records past their window");
}

conversation_limits node_config::conversation() const {
  conversation_limits lim;
  lim.idempotency_window_ms = idempotency_window_s * 1000;
  lim.idempotency_cache = idempotency_cache;
  lim.max_payload_bytes = max_payload_bytes;
  lim.watermark_delay = std::chrono::milliseconds(watermark_delay_ms);
  lim.sweep_interval_ms = sweep_interval_s * 1000;
  return lim;
}

store_writer_limits node_config::writer() const {
  store_writer_limits lim;
  lim.max_batch_ops = max_batch_ops;
  return lim;
}

std::string node_config::validate() const {
  if (data_dir.empty())
    return "parley.data must not be empty";
  if (idempotency_window_s <= 0)
    return "parley.idempotency-window-s must be positive";
  if (watermark_delay_ms < 0)
    return "parley.watermark-delay-ms must not be negative";
  if (sweep_interval_s < 0)
    return "parley.idempotency-sweep-interval-s must not be negative";
  if (max_batch_ops == 0)
    return "parley.max-batch-ops must be positive";
  return {};
}

std::vector<std::string> normalize_args(int argc, char** argv) {
  static const std::pair<const char*, const char*> renames[] = {
    {"--data", "--parley.data"},
    {"--log-level", "--parley.log-level"},
    {"--config", "--config-file"},
  };
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool renamed = false;
    for (auto [from, to] : renames) {
      std::string f = from;
      if (arg == f && i + 1 < argc) {
        out.push_back(std::string(to) + "=" + argv[++i]);
        renamed = true;
      } else if (arg.rfind(f + "=", 0) == 0) {
        out.push_back(std::string(to) + arg.substr(f.size()));
        renamed = true;
      }
      if (renamed)
        break;
    }
    if (!renamed)
      out.push_back(std::move(arg));
  }
  return out;
}

} // namespace parley
