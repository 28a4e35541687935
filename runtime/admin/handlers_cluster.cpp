#include "runtime/admin/handlers.hpp"

// PLACEHOLDER (issue 23, being written this session): registers nothing yet.

namespace parley::admin {

void add_cluster_handlers(handler_table&, env&) {
}

std::string cluster_status_fields(cluster_member*) {
  return {};
}

} // namespace parley::admin
