#include "tools/parleyctl/config.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace parley::ctl {

namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v)
    return std::nullopt;
  return std::string{v};
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

/// Reads `node` and `token` from the file at `path` through one open
/// descriptor (what is checked is what is read). `must_exist`: a missing
/// file is an error (it was named explicitly).
std::optional<std::string> read_config(const std::string& path,
                                       bool must_exist,
                                       std::optional<std::string>& node,
                                       std::optional<std::string>& token) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY
                                  | O_NONBLOCK);
  if (fd < 0) {
    if ((errno == ENOENT || errno == ENOTDIR) && !must_exist)
      return std::nullopt;
    return "cannot read the config file " + path + ": "
           + std::strerror(errno);
  }
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } guard{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0)
    return "cannot read the config file " + path + ": "
           + std::strerror(errno);
  if (auto err = config_file_problem(st, ::geteuid(), path))
    return err;
  std::string text;
  char buf[4096];
  while (text.size() <= max_config_bytes) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return "cannot read the config file " + path + ": "
             + std::strerror(errno);
    if (n == 0)
      break;
    text.append(buf, static_cast<size_t>(n));
  }
  if (text.size() > max_config_bytes)
    return "the config file " + path + " is larger than "
           + std::to_string(max_config_bytes) + " bytes";
  return parse_config(text, path, node, token);
}

} // namespace

std::optional<std::string> config_file_problem(const struct stat& st,
                                               uid_t user,
                                               const std::string& path) {
  if (!S_ISREG(st.st_mode))
    return "the config file " + path + " is not a regular file";
  if (st.st_uid != user)
    return "the config file " + path + " belongs to uid "
           + std::to_string(st.st_uid) + ", not to the user running "
           "parleyctl (uid " + std::to_string(user) + "); refusing a token "
           "someone else could have written";
  if (st.st_mode & 077)
    return "the config file " + path + " holds a token and is readable by "
           "others; make it private: chmod 600 " + path;
  if (static_cast<uint64_t>(st.st_size) > max_config_bytes)
    return "the config file " + path + " is larger than "
           + std::to_string(max_config_bytes) + " bytes";
  return std::nullopt;
}

std::optional<std::string> parse_config(const std::string& text,
                                        const std::string& path,
                                        std::optional<std::string>& node,
                                        std::optional<std::string>& token) {
  if (text.size() > max_config_bytes)
    return "the config file " + path + " is larger than "
           + std::to_string(max_config_bytes) + " bytes";
  size_t pos = 0;
  int n = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    ++n;
    auto where = path + ":" + std::to_string(n) + ": ";
    for (unsigned char c : line)
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
        return where + "not text (a control character); expected lines "
                       "`node = HOST:PORT` and `token = ...`";
    auto t = trim(line);
    if (t.empty() || t[0] == '#')
      continue;
    auto eq = t.find('=');
    if (eq == std::string::npos)
      return where + "expected `key = value`";
    auto key = trim(t.substr(0, eq));
    auto value = trim(t.substr(eq + 1));
    if (key == "node") {
      if (!node)
        node = value;
    } else if (key == "token") {
      if (!token)
        token = value;
    } else {
      return where + "unknown key '" + key.substr(0, 40) + "' (node, token)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> parse_flags(const std::vector<std::string>& args,
                                       flags& out,
                                       std::vector<std::string>& rest) {
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-')
      break;
    if (a == "--json") {
      out.json = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    std::string name = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (name != "--node" && name != "--token" && name != "--config"
        && name != "--count")
      return "unknown option " + name + " (see parleyctl --help)";
    if (!has_value) {
      if (i + 1 >= args.size())
        return name + " needs a value";
      value = args[++i];
    }
    if (name == "--node")
      out.node = value;
    else if (name == "--token")
      out.token = value;
    else if (name == "--config")
      out.config = value;
    else {
      if (value.empty() || value.size() > 9
          || value.find_first_not_of("0123456789") != std::string::npos
          || std::stol(value) < 1)
        return "--count takes a number of refreshes, 1 or more";
      out.count = std::stol(value);
    }
  }
  rest.assign(args.begin() + static_cast<long>(i), args.end());
  return std::nullopt;
}

std::string default_config_path() {
  if (auto p = env("PARLEYCTL_CONFIG"))
    return *p;
  auto home = env("HOME");
  return (home ? *home : std::string{"."}) + "/.config/parley/parleyctl.conf";
}

std::optional<std::string> resolve(const flags& f, settings& out) {
  auto node = f.node ? f.node : env("PARLEYCTL_NODE");
  auto token = f.token ? f.token : env("PARLEYCTL_TOKEN");
  // The config file is read when it was named, or something is missing.
  bool named = f.config || env("PARLEYCTL_CONFIG");
  if (named || !node || !token) {
    auto path = f.config ? *f.config : default_config_path();
    if (auto err = read_config(path, named, node, token))
      return err;
  }
  if (node && !parse_endpoint(*node, out.node))
    return "bad node address '" + *node + "' (expected HOST:PORT)";
  out.token = token.value_or("");
  for (unsigned char c : out.token)
    if (c <= 0x20 || c == 0x7f)
      return std::string{"the admin token holds a space or a control "
                         "character"};
  out.json = f.json;
  out.count = f.count;
  return std::nullopt;
}

std::string usage_text() {
  return "usage: parleyctl [OPTIONS] COMMAND ARGS...   run one command\n"
         "       parleyctl [OPTIONS]                  the interactive shell\n"
         "\n"
         "Options:\n"
         "  --node HOST:PORT  the node's admin port (default 127.0.0.1:8090)\n"
         "  --token TOKEN     the admin token (every local user sees it in\n"
         "                    ps: prefer PARLEYCTL_TOKEN or the config file)\n"
         "  --json            print the node's JSON answers, one per line\n"
         "  --config FILE     the config file\n"
         "  --count N         metrics top: stop after N refreshes\n"
         "  --help            this text\n"
         "\n"
         "The node and token come from the options, else PARLEYCTL_NODE and\n"
         "PARLEYCTL_TOKEN, else the config file ($PARLEYCTL_CONFIG, else\n"
         "~/.config/parley/parleyctl.conf; chmod 600) with the lines\n"
         "  node = 127.0.0.1:8090\n"
         "  token = ...\n"
         "\n"
         "Exit codes: 0 done, 1 the node refused the command, 2 bad usage,\n"
         "3 the node cannot be reached, 4 the token was refused, 130 Ctrl-C.\n"
         "\n";
}

} // namespace parley::ctl
