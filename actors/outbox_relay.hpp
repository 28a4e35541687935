#pragma once

// outbox_relay: a one-shot actor run at node start. It asks the store which
// conversations have committed messages whose delivery events were not all
// emitted (log suffix after the outbox watermark) and activates each of
// them through the directory; activation re-emits the suffix in order.

#include <caf/event_based_actor.hpp>

#include "actors/directory.hpp"
#include "actors/store_reader.hpp"

namespace parley {

void outbox_relay_impl(caf::event_based_actor* self, store_reader_actor reader,
                       directory_actor directory);

} // namespace parley
