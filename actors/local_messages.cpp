#include "actors/local_messages.hpp"

namespace parley {

device_sink::~device_sink() = default;

send_answer::~send_answer() = default;

} // namespace parley
