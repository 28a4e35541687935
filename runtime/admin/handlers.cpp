#include "runtime/admin/handlers.hpp"

namespace parley::admin {

void handler_table::add(const std::string& command, handler h) {
  handlers_[command] = std::move(h);
}

const handler* handler_table::find(const std::string& command) const {
  auto i = handlers_.find(command);
  return i == handlers_.end() ? nullptr : &i->second;
}

std::vector<std::string> handler_table::missing() const {
  std::vector<std::string> out;
  for (auto& c : commands())
    if (c.mode != client_mode::local && !find(c.name))
      out.push_back(c.name);
  return out;
}

} // namespace parley::admin
