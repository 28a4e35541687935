#include "runtime/core/messages.hpp"

#include <string>

namespace parley {

std::string make_server_message_id(conversation_id conv, sequence seq) {
  // 32 lowercase hex digits: the conversation's 16, then the sequence's
  // (clients may keep these ids; the format never changes).
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 15; i >= 0; --i, conv >>= 4)
    out[static_cast<size_t>(i)] = digits[conv & 0xF];
  for (int i = 31; i >= 16; --i, seq >>= 4)
    out[static_cast<size_t>(i)] = digits[seq & 0xF];
  return out;
}

} // namespace parley
