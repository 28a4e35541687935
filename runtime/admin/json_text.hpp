#pragma once

// json_text: writing JSON by hand for the admin port, the cluster's etcd
// values and parleyctl (no CAF, no protobuf).

#include <string>

namespace parley {

/// `s` as a JSON string literal: quotes and backslashes escaped, control
/// characters as \uXXXX (so a name or message never breaks the document).
std::string json_quote(const std::string& s);

} // namespace parley
