#pragma once

// config: parleyctl's global flags, and where the node and the admin token
// come from: flags, else PARLEYCTL_NODE / PARLEYCTL_TOKEN, else the config
// file ($PARLEYCTL_CONFIG or ~/.config/parley/parleyctl.conf, lines
// `node = HOST:PORT` and `token = ...`, owned by the user running parleyctl
// and readable only by them).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>

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

/// The largest config file parleyctl reads.
constexpr uint64_t max_config_bytes = 64 * 1024;

/// Why the config file at `path` with status `st` must not be read by the
/// user `user` (not a regular file, another user's, readable by others,
/// too large), or nullopt.
std::optional<std::string> config_file_problem(const struct stat& st,
                                               uid_t user,
                                               const std::string& path);

/// Reads the config file's `text` (lines `key = value`, # comments):
/// `node` and `token` are set unless already set (flags and environment
/// come first). An error names the file and line: a line without '=', an
/// unknown key, a control character (not a text file), too large.
std::optional<std::string> parse_config(const std::string& text,
                                        const std::string& path,
                                        std::optional<std::string>& node,
                                        std::optional<std::string>& token);

/// The config file's path: $PARLEYCTL_CONFIG, else
/// ~/.config/parley/parleyctl.conf.
std::string default_config_path();

/// The usage text of `parleyctl --help`.
std::string usage_text();

} // namespace parley::ctl
