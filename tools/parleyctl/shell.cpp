#include "tools/parleyctl/shell.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <sys/stat.h>

#include <editline/readline.h>

#include "runtime/admin/command_table.hpp"
#include "tools/parleyctl/run.hpp"

namespace parley::ctl {

namespace {

// libedit's completion callbacks take no user data: the matches of the
// current completion live here between the two calls.
std::vector<std::string> matches;

char* next_match(const char*, int state) {
  static size_t i;
  if (state == 0)
    i = 0;
  return i < matches.size() ? strdup(matches[i++].c_str()) : nullptr;
}

char** complete_line(const char* text, int, int end) {
  rl_attempted_completion_over = 1; // never fall back to file names
  matches = admin::complete(std::string(rl_line_buffer, end));
  if (matches.empty())
    return nullptr;
  return rl_completion_matches(text, next_match);
}

std::string history_path() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.parleyctl_history";
}

bool has_password_arg(const admin::command_spec* c) {
  return c && std::any_of(c->args.begin(), c->args.end(), [](auto& a) {
           return a.kind == admin::arg_kind::password;
         });
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos)
    return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace

bool history_secret(const std::string& line) {
  // The words, roughly: quotes dropped, so that a line with an
  // unterminated quote is judged too.
  std::vector<std::string> words;
  std::string cur;
  for (char c : line + " ") {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!cur.empty())
        words.push_back(lower(cur));
      cur.clear();
    } else if (c != '"' && c != '\'') {
      cur += c;
    }
  }
  if (words.empty() || words[0] == "help")
    return false;
  // Whether the line parses or not (a bad name, a short password, a typo
  // in the command): its first words name a command that takes a
  // password, or are closest to one.
  if (words.size() >= 2) {
    auto two = words[0] + " " + words[1];
    if (has_password_arg(admin::find_command(two)))
      return true;
    if (!admin::find_command(two) && !admin::find_command(words[0]))
      if (has_password_arg(admin::find_command(admin::suggest(two))))
        return true;
  }
  return has_password_arg(admin::find_command(words[0]));
}

int run_shell(const settings& s) {
  rl_readline_name = "parleyctl";
  rl_attempted_completion_function = complete_line;
  rl_catch_signals = 0;
  auto hist = history_path();
  using_history();
  stifle_history(1000);
  read_history(hist.c_str());
  catch_sigint(true); // Ctrl-C ends a command or clears the line
  std::string prompt = "parley " + s.node.text() + "> ";
  std::cout << "parleyctl: the node at " << s.node.text()
            << ". help lists the commands, quit or Ctrl-D leaves.\n"
            << std::flush;
  while (true) {
    sigint_seen = false;
    char* raw = readline(prompt.c_str());
    if (!raw) {
      if (sigint_seen) { // Ctrl-C at the prompt: a fresh line
        std::cout << "\n" << std::flush;
        continue;
      }
      std::cout << "\n";
      break;
    }
    std::string line = trim(raw);
    std::free(raw);
    if (line.empty())
      continue;
    auto words = admin::split_words(line);
    if (!history_secret(line)) {
      add_history(line.c_str());
      // Created private (0600), never readable by others for a moment.
      auto mask = umask(077);
      write_history(hist.c_str());
      umask(mask);
    }
    if (line == "quit" || line == "exit")
      break;
    if (!words) {
      std::cerr << "parleyctl: unterminated quote\n";
      continue;
    }
    sigint_seen = false;
    run_words(s, *words);
    std::cout << std::flush;
    std::cerr << std::flush;
  }
  std::cout << std::flush;
  return exit_ok;
}

} // namespace parley::ctl
