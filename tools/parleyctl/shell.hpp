#pragma once

// shell: parleyctl without a command. A prompt with the node's address,
// line editing, history (~/.parleyctl_history) and tab completion of
// commands and argument values (libedit); each line runs as in one-shot
// mode. quit, exit or Ctrl-D leave.

#include "tools/parleyctl/config.hpp"

namespace parley::ctl {

/// Runs the shell until the operator leaves; returns 0.
int run_shell(const settings& s);

} // namespace parley::ctl
