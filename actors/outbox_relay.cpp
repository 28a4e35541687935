#include "actors/outbox_relay.hpp"

#include <spdlog/spdlog.h>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley {

namespace {

/// Tries of the scan before it gives up on a reader that times out.
constexpr int max_attempts = 3;

void scan(caf::event_based_actor* self, store_reader_actor reader,
          directory_actor directory, int attempt) {
  self->request(reader, timeouts::scan, outbox_atom::value)
    .then(
      [=](std::vector<uint64_t>& convs) {
        if (!convs.empty())
          spdlog::info("outbox relay conversations={}",
                       convs.size());
        for (auto conv : convs)
          self->send(directory, caf::spawn_atom::value, conv);
      },
      [=](caf::error& err) {
        // A read: asking again is harmless (a late answer to the first
        // request is dropped). Without an answer, conversations with an
        // unemitted suffix re-emit it when they are first used instead.
        if (err == caf::sec::request_timeout && attempt < max_attempts) {
          spdlog::warn("outbox relay scan timed out attempt={}", attempt);
          scan(self, reader, directory, attempt + 1);
          return;
        }
        spdlog::error("outbox relay scan failed error=\"{}\"", to_string(err));
      });
}

} // namespace

void outbox_relay_impl(caf::event_based_actor* self, store_reader_actor reader,
                       directory_actor directory) {
  scan(self, reader, directory, 1);
}

} // namespace parley
