#pragma once

// config: parleyctl's global flags, and where the node and the admin token
// come from: flags, else PARLEYCTL_NODE / PARLEYCTL_TOKEN, else the config
// file ($PARLEYCTL_CONFIG or ~/.config/parley/parleyctl.conf, lines
// `node = HOST:PORT` and `token = ...`, readable only by its owner).

#include <optional>
#include <string>
#include <vector>

#include "tools/parleyctl/http.hpp"

namespace parley::ctl {

/// The global flags, before the command words.
struct flags {
  std::optional<std::string> node, token, config;
  bool json = false;
  bool help = false;
  long count = -1; ///< --count N: refreshes of `metrics top` (-1: no limit)
};

/// Parses leading flags of `args`; the rest (the command) goes to `rest`.
/// Returns an error message on a bad flag.
std::optional<std::string> parse_flags(const std::vector<std::string>& args,
                                       flags& out,
                                       std::vector<std::string>& rest);

/// Everything a command needs to reach the node.
struct settings {
  endpoint node;
  std::string token; ///< empty: none found
  bool json = false;
  long count = -1;
};

/// Resolves flags, environment and config file. Returns an error message
/// (a bad node address, an unreadable or unsafe config file).
std::optional<std::string> resolve(const flags& f, settings& out);

/// The config file's path: $PARLEYCTL_CONFIG, else
/// ~/.config/parley/parleyctl.conf.
std::string default_config_path();

/// The usage text of `parleyctl --help`.
std::string usage_text();

} // namespace parley::ctl
