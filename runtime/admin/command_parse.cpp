#include "runtime/admin/command_table.hpp"

// The command line side of command_table.hpp: argument checks, parsing,
// suggestions, completion and help. The request side (to_request,
// from_request) is in command_request.cpp.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <set>

namespace parley::admin {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return c >= '0' && c <= '9';
  });
}

/// Digits without leading zeros ("0" stays "0").
std::string strip_zeros(const std::string& s) {
  auto i = s.find_first_not_of('0');
  return i == std::string::npos ? "0" : s.substr(i);
}

/// `s` as an unsigned number in [lo, hi], normalized; nullopt otherwise.
std::optional<std::string> number_in(const std::string& s, uint64_t lo,
                                     uint64_t hi) {
  if (!all_digits(s))
    return std::nullopt;
  auto d = strip_zeros(s);
  static const std::string max64 = "18446744073709551615"; // 2^64-1
  if (d.size() > max64.size() || (d.size() == max64.size() && d > max64))
    return std::nullopt;
  uint64_t v = std::stoull(d);
  if (v < lo || v > hi)
    return std::nullopt;
  return d;
}

bool name_chars(const std::string& s) {
  return !s.empty() && s.size() <= 64
         && std::all_of(s.begin(), s.end(), [](unsigned char c) {
              return std::isalnum(c) || c == '.' || c == '_' || c == '-';
            });
}

/// A new account's name, as the accounts actor takes it (3-32 of a-z 0-9
/// _ . -), so parleyctl refuses a bad one before asking the node.
bool new_name(const std::string& s) {
  return s.size() >= 3 && s.size() <= 32
         && std::all_of(s.begin(), s.end(), [](unsigned char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                     || c == '.' || c == '_' || c == '-';
            });
}

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

constexpr uint64_t max_id = 9223372036854775807ull; // 2^63-1

/// What an argument of `spec` accepts, for messages and help.
std::string accepts(const arg_spec& spec) {
  switch (spec.kind) {
    case arg_kind::name:
      return "3-32 of a-z 0-9 . _ -";
    case arg_kind::user:
      return "a user name or a numeric user id";
    case arg_kind::user_or_all:
      return "a user name, a numeric user id, or all";
    case arg_kind::password:
      return "8-1024 bytes without control characters";
    case arg_kind::device:
      return "a device id, 1-9223372036854775807";
    case arg_kind::node:
      return "a node id, 1-65535";
    case arg_kind::partition:
      return "a partition, 0-65535";
    case arg_kind::conversation:
      return "a conversation id, 1-18446744073709551615";
    case arg_kind::count:
      return "a count, 1-1000";
    case arg_kind::rate:
      return "N/s, N/min or N/h with N 1-1000000, or off";
    case arg_kind::choice: {
      if (spec.choices.empty())
        return "a command";
      std::string s = "one of";
      for (auto& c : spec.choices)
        s += " " + c;
      return s;
    }
    case arg_kind::job:
      return "a job id, 1-20 digits";
  }
  return "?";
}

std::optional<std::string> check_rate(const std::string& text) {
  if (lower(text) == "off")
    return "off";
  auto slash = text.find('/');
  if (slash == std::string::npos)
    return std::nullopt;
  auto n = number_in(text.substr(0, slash), 1, 1000000);
  auto unit = lower(text.substr(slash + 1));
  if (!n || (unit != "s" && unit != "min" && unit != "h"))
    return std::nullopt;
  return *n + "/" + unit;
}

std::optional<std::string> check_value(const arg_spec& spec,
                                       const std::string& text) {
  switch (spec.kind) {
    case arg_kind::name:
      if (new_name(text))
        return text;
      return std::nullopt;
    case arg_kind::user_or_all:
      if (text == "all")
        return text;
      [[fallthrough]];
    case arg_kind::user:
      // A numeric id or a name; the node tells which (digits are kept as
      // typed: "007" may be a name).
      if (name_chars(text))
        return text;
      return std::nullopt;
    case arg_kind::password:
      if (text.size() < 8 || text.size() > 1024)
        return std::nullopt;
      for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f)
          return std::nullopt;
      return text;
    case arg_kind::device:
      return number_in(text, 1, max_id);
    case arg_kind::conversation: // a direct chat's id has the top bit set
      return number_in(text, 1, UINT64_MAX);
    case arg_kind::node:
      return number_in(text, 1, 65535);
    case arg_kind::partition:
      return number_in(text, 0, 65535);
    case arg_kind::count:
      return number_in(text, 1, 1000);
    case arg_kind::rate:
      return check_rate(text);
    case arg_kind::choice:
      for (auto& c : spec.choices)
        if (lower(text) == lower(c))
          return c;
      return std::nullopt;
    case arg_kind::job:
      if (all_digits(text) && text.size() <= 20)
        return strip_zeros(text);
      return std::nullopt;
  }
  return std::nullopt;
}

/// Optimal string alignment distance (an adjacent swap costs 1).
size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1,
                                     std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i)
    d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j)
    d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string first_word(const std::string& name) {
  return name.substr(0, name.find(' '));
}

/// The commands whose first word is `w` and that have a second word.
std::vector<const command_spec*> group_of(const std::string& w) {
  std::vector<const command_spec*> out;
  for (auto& c : commands())
    if (c.name.find(' ') != std::string::npos && first_word(c.name) == w)
      out.push_back(&c);
  return out;
}

std::string unknown_message(const std::string& typed) {
  std::string msg = "unknown command '" + typed + "'";
  auto s = suggest(typed);
  if (!s.empty())
    msg += "; did you mean '" + s + "'?";
  else
    msg += " (help lists the commands)";
  return msg;
}

/// The command named by the first one or two of `words`, and how many
/// words it took; or an error message.
std::variant<std::pair<const command_spec*, size_t>, std::string>
command_of(const std::vector<std::string>& words) {
  if (words.empty())
    return std::string{"no command given (help lists the commands)"};
  if (words.size() >= 2)
    if (auto c = find_command(words[0] + " " + words[1]))
      return std::make_pair(c, size_t{2});
  if (auto c = find_command(words[0]))
    return std::make_pair(c, size_t{1});
  if (auto g = group_of(words[0]); !g.empty() && words.size() < 2) {
    std::string msg = "'" + words[0] + "' needs a second word:";
    for (auto* c : g)
      msg += " " + c->name.substr(c->name.find(' ') + 1);
    return msg;
  }
  return unknown_message(words.size() >= 2 ? words[0] + " " + words[1]
                                           : words[0]);
}

} // namespace

std::variant<std::string, std::string> check_arg(const arg_spec& spec,
                                                 const std::string& text) {
  if (auto v = check_value(spec, text))
    return std::variant<std::string, std::string>{std::in_place_index<0>, *v};
  std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  if (spec.kind == arg_kind::password)
    shown = std::to_string(text.size()) + " bytes";
  return std::variant<std::string, std::string>{
    std::in_place_index<1>,
    "bad " + spec.name + " '" + shown + "': expected " + accepts(spec)};
}

std::variant<parsed_command, std::string>
parse(const std::vector<std::string>& words) {
  auto found = command_of(words);
  if (auto* err = std::get_if<std::string>(&found))
    return *err;
  auto [spec, used] = std::get<0>(found);
  parsed_command out{spec, {}};
  std::vector<std::string> rest(words.begin() + used, words.end());
  if (spec->mode == client_mode::local && spec->name == "help") {
    // help [COMMAND]: the command may be one word, two words, or one
    // quoted word holding both.
    if (rest.empty())
      return out;
    std::string name;
    for (auto& w : rest)
      name += (name.empty() ? "" : " ") + w;
    if (!find_command(name)) {
      auto found = command_of(*split_words(name));
      return found.index() == 1 ? std::get<1>(found) : unknown_message(name);
    }
    out.args["command"] = name;
    return out;
  }
  for (size_t i = 0; i < spec->args.size(); ++i) {
    auto& a = spec->args[i];
    if (i >= rest.size()) {
      if (a.optional)
        break;
      return "missing " + upper(a.name) + "; usage: " + usage(*spec);
    }
    auto v = check_arg(a, rest[i]);
    if (v.index() == 1)
      return std::get<1>(v) + "; usage: " + usage(*spec);
    out.args[a.name] = std::get<0>(v);
  }
  if (rest.size() > spec->args.size()) {
    auto& extra = rest[spec->args.size()];
    return "too many arguments ('" + extra + "' is one too many"
           + (extra.compare(0, 2, "--") == 0 ? "; options go before the command"
                                             : "")
           + "); usage: " + usage(*spec);
  }
  return out;
}

std::optional<std::vector<std::string>> split_words(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : line) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word)
        out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote)
    return std::nullopt;
  if (in_word)
    out.push_back(std::move(cur));
  return out;
}

std::string suggest(const std::string& typed) {
  std::string best;
  size_t best_d = SIZE_MAX;
  auto t = lower(typed);
  for (auto& c : commands()) {
    // Compare with the whole name, and a one-word typo with the first word.
    size_t d = distance(t, c.name);
    if (t.find(' ') == std::string::npos)
      d = std::min(d, distance(t, first_word(c.name)));
    bool prefix = t.size() >= 2 && c.name.compare(0, t.size(), t) == 0;
    if (prefix)
      d = std::min<size_t>(d, 1);
    if (d < best_d) {
      best_d = d;
      best = c.name;
    }
  }
  size_t allowed = std::max<size_t>(1, t.size() / 3);
  return best_d <= allowed ? best : std::string{};
}

std::vector<std::string> complete(const std::string& line) {
  // The word being typed is what follows the last space outside quotes.
  std::string before = line, current;
  if (!line.empty() && !std::isspace(static_cast<unsigned char>(line.back()))) {
    auto words = split_words(line);
    if (!words || words->empty())
      return {};
    current = words->back();
    auto cut = line.find_last_of(" \t");
    before = cut == std::string::npos ? "" : line.substr(0, cut + 1);
  }
  auto done = split_words(before);
  if (!done)
    return {};
  std::set<std::string> out;
  auto add = [&](const std::string& w) {
    if (w.compare(0, current.size(), current) == 0)
      out.insert(w);
  };
  std::vector<std::string> ws = *done;
  if (!ws.empty() && ws[0] == "help")
    ws.erase(ws.begin()); // help completes command words, and takes no more
  bool help = ws.size() != done->size();
  if (ws.empty()) {
    for (auto& c : commands())
      add(first_word(c.name));
  } else if (ws.size() == 1 && !group_of(ws[0]).empty()
             && (!find_command(ws[0]) || help)) {
    for (auto* c : group_of(ws[0]))
      add(c->name.substr(c->name.find(' ') + 1));
  } else if (!help) {
    auto found = command_of(ws);
    if (found.index() != 0)
      return {};
    auto [spec, used] = std::get<0>(found);
    size_t i = ws.size() - used;
    if (spec->name == "help" || i >= spec->args.size())
      return {};
    auto& a = spec->args[i];
    for (auto& c : a.choices)
      add(c);
    if (a.kind == arg_kind::user_or_all)
      add("all");
  }
  return {out.begin(), out.end()};
}

std::string usage(const command_spec& cmd) {
  std::string s = cmd.name;
  for (auto& a : cmd.args) {
    auto word = upper(a.name)
                + (a.kind == arg_kind::user_or_all ? "|all" : "");
    s += a.optional ? " [" + word + "]" : " " + word;
  }
  return s;
}

std::string help_text() {
  size_t w = 0;
  for (auto& c : commands())
    w = std::max(w, usage(c).size());
  std::string s = "Commands:\n";
  for (auto& c : commands()) {
    auto u = usage(c);
    s += "  " + u + std::string(w - u.size() + 3, ' ') + c.summary + "\n";
  }
  s += "\n`help COMMAND` explains one command.\n";
  return s;
}

std::string help_text(const command_spec& cmd) {
  std::string s = "usage: " + usage(cmd) + "\n\n";
  // The paragraph, wrapped at 76 columns.
  std::string line;
  size_t pos = 0;
  const auto& p = cmd.help;
  while (pos < p.size()) {
    auto end = p.find(' ', pos);
    if (end == std::string::npos)
      end = p.size();
    auto word = p.substr(pos, end - pos);
    if (!line.empty() && line.size() + 1 + word.size() > 76) {
      s += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    pos = end + 1;
  }
  if (!line.empty())
    s += line + "\n";
  if (!cmd.args.empty()) {
    s += "\nArguments:\n";
    size_t w = 0;
    for (auto& a : cmd.args)
      w = std::max(w, a.name.size());
    for (auto& a : cmd.args)
      s += "  " + upper(a.name) + std::string(w - a.name.size() + 3, ' ')
           + a.help + (a.optional ? " (optional)" : "")
           + (a.help == accepts(a) ? "" : "; takes " + accepts(a)) + "\n";
  }
  return s;
}

} // namespace parley::admin
