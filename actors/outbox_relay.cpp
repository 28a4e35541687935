#include "actors/outbox_relay.hpp"

#include <spdlog/spdlog.h>

#include "runtime/core/errors.hpp"

namespace parley {

void outbox_relay_impl(caf::event_based_actor* self, store_reader_actor reader,
                       directory_actor directory) {
  self->request(reader, caf::infinite, outbox_atom::value)
    .then(
      [=](std::vector<uint64_t>& convs) {
        if (!convs.empty())
          spdlog::info("outbox relay conversations={}",
                       convs.size());
        for (auto conv : convs)
          self->send(directory, caf::spawn_atom::value, conv);
      },
      [](caf::error& err) {
        spdlog::error("outbox relay scan failed error=\"{}\"", to_string(err));
      });
}

} // namespace parley
