// parleyctl: the operator's shell for a Parley node (issue 23).
//   parleyctl [OPTIONS] COMMAND ARGS...   one command, for scripts
//   parleyctl [OPTIONS]                   the interactive shell
// Commands come from runtime/admin/command_table.hpp; exit codes from
// tools/parleyctl/run.hpp.

#include <iostream>

#include "runtime/admin/command_table.hpp"
#include "tools/parleyctl/config.hpp"
#include "tools/parleyctl/run.hpp"
#include "tools/parleyctl/shell.hpp"

using namespace parley::ctl;

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  flags f;
  std::vector<std::string> command;
  if (auto err = parse_flags(args, f, command)) {
    std::cerr << "parleyctl: " << *err << "\n";
    return exit_usage;
  }
  if (f.help) {
    std::cout << usage_text() << parley::admin::help_text();
    return exit_ok;
  }
  // A local command (help) needs neither the node nor the config file.
  if (!command.empty()) {
    auto parsed = parley::admin::parse(command);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      std::cerr << "parleyctl: " << *err << "\n";
      return exit_usage;
    }
    auto& cmd = std::get<parley::admin::parsed_command>(parsed);
    if (cmd.spec->mode == parley::admin::client_mode::local)
      return run_command(settings{}, cmd);
    settings s;
    if (auto err = resolve(f, s)) {
      std::cerr << "parleyctl: " << *err << "\n";
      return exit_usage;
    }
    return run_command(s, cmd);
  }
  settings s;
  if (auto err = resolve(f, s)) {
    std::cerr << "parleyctl: " << *err << "\n";
    return exit_usage;
  }
  return run_shell(s);
}
