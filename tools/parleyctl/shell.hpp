#pragma once

// shell: parleyctl without a command. A prompt with the node's address,
// line editing, history (~/.parleyctl_history) and tab completion of
// commands and argument values (libedit); each line runs as in one-shot
// mode. quit, exit or Ctrl-D leave.

#include <string>

#include "tools/parleyctl/config.hpp"

namespace parley::ctl {

/// Whether `line` stays out of the history file: its first words name a
/// command that takes a password (user create), or are closest to one,
/// whether the line parses or not. `help ...` is kept.
bool history_secret(const std::string& line);

/// Runs the shell until the operator leaves; returns 0.
int run_shell(const settings& s);

} // namespace parley::ctl
