#pragma once

// json: the node's answers as parleyctl reads them. Keeps the order of an
// object's fields (they become table columns and lines in that order) and
// numbers as their text (ids past 2^53 stay exact).

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace parley::ctl {

struct json {
  enum kind_t { null, boolean, number, string, array, object };
  kind_t kind = null;
  std::string text;  ///< string: the decoded text; number, boolean: as sent
  std::vector<json> items;                          ///< array
  std::vector<std::pair<std::string, json>> fields; ///< object, in order

  bool scalar() const { return kind != array && kind != object; }
  /// The field `key` of an object, or null.
  const json* get(const std::string& key) const;
  /// A field's text ("" when absent or not a scalar).
  std::string str(const std::string& key) const;
  /// A numeric field as a double (0 when absent or not a number).
  double num(const std::string& key) const;
};

/// Parses one JSON document (whitespace around it allowed); nullopt on
/// anything malformed or nested deeper than 64.
std::optional<json> parse_json(const std::string& text);

/// `v` as compact JSON on one line.
std::string to_json(const json& v);

} // namespace parley::ctl
