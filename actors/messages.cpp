#include "actors/local_messages.hpp"

#include <cstdio>

namespace parley {

device_sink::~device_sink() = default;

send_answer::~send_answer() = default;

std::string make_server_message_id(conversation_id conv, sequence seq) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx",
                static_cast<unsigned long long>(conv),
                static_cast<unsigned long long>(seq));
  return std::string(buf, 32);
}

} // namespace parley
