#pragma once

// command_table: every operator command of Parley declared once (issue 23).
// parleyctl's parser, help and tab completion, and the node's admin
// listener's routing and argument checks all follow from commands(); adding
// a command is one entry in command_table.cpp plus its handler on the node
// (runtime/admin/handlers.hpp). No CAF, no Boost, no actors here: parleyctl
// links this without the server.
//
// A command is one or two words ("status", "user show"), then positional
// arguments. Each maps to one admin request: METHOD and a path whose
// {name} segments are arguments; the other arguments travel as a JSON
// object (the body of a POST, the query string of a GET). The node parses a
// request back into the same arguments with the same checks.

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace parley::admin {

/// What an argument accepts (check_arg() holds the rules).
enum class arg_kind {
  name,         ///< a user name for a new account: 3-32 of [a-z0-9._-] (as the
                ///< accounts actor takes it)
  user,         ///< an existing user: a name, or a numeric user id
  user_or_all,  ///< as `user`, or the word "all"
  password,     ///< 8-1024 bytes of anything but control characters
  device,       ///< a device id: 1 .. 2^63-1
  node,         ///< a node id: 1-65535
  partition,    ///< a partition: 0-65535
  conversation, ///< a conversation id: 1 .. 2^64-1 (a direct chat's has
                ///< the top bit set)
  count,        ///< 1-1000
  rate,         ///< "N/s", "N/min", "N/h" (N 1-1000000) or "off"
  choice,       ///< one of arg_spec::choices
  job,          ///< a job id the node handed out: 1-20 digits
};

struct arg_spec {
  std::string name;  ///< the JSON field and path placeholder; HELP shows it
                     ///< upper-cased
  arg_kind kind;
  std::string help;
  bool optional = false;              ///< only the last arguments
  std::vector<std::string> choices = {}; ///< for arg_kind::choice
};

/// How parleyctl treats the answer.
enum class client_mode {
  once,  ///< print the answer
  job,   ///< the answer names a job ({"job":"ID",...}); follow it with a
         ///< progress bar and ETA until it ends (GET /v1/admin/jobs/ID)
  top,   ///< re-ask every second and show rates (metrics top)
  local, ///< no request: parleyctl answers itself (help)
};

struct command_spec {
  std::string name;     ///< "user show"
  std::vector<arg_spec> args;
  std::string summary;  ///< one line for `help`
  std::string help;     ///< the paragraph for `help COMMAND`
  std::string method;   ///< "GET" or "POST"; empty for client_mode::local
  std::string path;     ///< "/v1/admin/users/{user}"
  client_mode mode = client_mode::once;
};

/// The table, in the order `help` lists it.
const std::vector<command_spec>& commands();

/// The command named exactly `name` ("user show"), or null.
const command_spec* find_command(const std::string& name);

/// Argument values by arg_spec::name, normalized by check_arg (absent
/// optional arguments are not present).
using arg_values = std::map<std::string, std::string>;

struct parsed_command {
  const command_spec* spec = nullptr;
  arg_values args;
};

/// Checks `text` against `spec`; returns the normalized value (numbers
/// without leading zeros, rates as "N/s|N/min|N/h" or "off") or a message
/// naming the argument and what it accepts.
std::variant<std::string, std::string> check_arg(const arg_spec& spec,
                                                 const std::string& text);
// (index 0: the value; index 1: the error message)

/// Words of a command line -> the command and its checked arguments, or a
/// message: unknown command (with the closest command suggested), missing
/// or extra arguments (with the usage line), a wrong argument.
std::variant<parsed_command, std::string>
parse(const std::vector<std::string>& words);

/// Splits a command line into words (whitespace; single and double quotes
/// group). nullopt on an unterminated quote.
std::optional<std::vector<std::string>> split_words(const std::string& line);

/// The closest command name to `typed` (edit distance), or empty if nothing
/// is close.
std::string suggest(const std::string& typed);

/// The admin request of a parsed command.
struct request {
  std::string method;
  std::string target;  ///< path with placeholders filled, plus ?query (GET)
  std::string body;    ///< JSON object (POST), "" for GET
};
request to_request(const parsed_command& cmd);

/// The node's side: a request -> the command and its checked arguments, or
/// an HTTP status (404 no such endpoint, 405 wrong method, 400 bad
/// argument, 413 body too large) with a message.
struct refusal {
  unsigned status;
  std::string message;
};
std::variant<parsed_command, refusal>
from_request(const std::string& method, const std::string& target,
             const std::string& body);

/// Completions of the word being typed at the end of `line` (command words
/// first, then argument values: choices, "all"). Sorted, unique.
std::vector<std::string> complete(const std::string& line);

/// `help`: every command with its usage and summary, aligned.
std::string help_text();
/// `help COMMAND`: usage, the paragraph, each argument with what it takes.
std::string help_text(const command_spec& cmd);
/// "user show USER" / "user create NAME [PASSWORD]".
std::string usage(const command_spec& cmd);

} // namespace parley::admin
