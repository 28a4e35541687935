#include "runtime/admin/command_table.hpp"

// The request side of command_table.hpp: a parsed command -> METHOD,
// target and body (parleyctl), and back (the node's admin listener), with
// the same argument checks on both sides.

#include <cctype>
#include <cmath>
#include <cstdio>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "runtime/admin/json_text.hpp"

namespace parley::admin {

namespace {

constexpr size_t max_body = 64 * 1024;
constexpr size_t max_target = 64 * 1024;

/// Kinds sent as JSON numbers.
bool numeric(arg_kind k) {
  return k == arg_kind::device || k == arg_kind::node
         || k == arg_kind::partition || k == arg_kind::conversation
         || k == arg_kind::count;
}

/// Percent-encodes all but RFC 3986's unreserved characters.
std::string encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// A path segment: as encode(), and "." or ".." fully escaped so that no
/// client or proxy folds the path.
std::string encode_segment(const std::string& s) {
  if (s == "." || s == "..")
    return s == "." ? "%2E" : "%2E%2E";
  return encode(s);
}

std::optional<std::string> decode(const std::string& s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1]))
          || !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
        return std::nullopt;
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    auto end = s.find(sep, pos);
    out.push_back(s.substr(pos, end - pos));
    if (end == std::string::npos)
      return out;
    pos = end + 1;
  }
}

/// The placeholder name of a path segment "{name}", or empty.
std::string placeholder(const std::string& seg) {
  if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}')
    return seg.substr(1, seg.size() - 2);
  return {};
}

const arg_spec* arg_named(const command_spec& c, const std::string& name) {
  for (auto& a : c.args)
    if (a.name == name)
      return &a;
  return nullptr;
}

refusal bad(std::string msg) {
  return refusal{400, std::move(msg)};
}

/// A JSON value of the body as argument text, or a refusal.
std::variant<std::string, refusal>
value_text(const std::string& key, const google::protobuf::Value& v) {
  using google::protobuf::Value;
  if (v.kind_case() == Value::kStringValue)
    return v.string_value();
  if (v.kind_case() == Value::kNumberValue) {
    double d = v.number_value();
    if (std::floor(d) != d || std::isinf(d))
      return bad("bad " + key + ": expected a whole number");
    if (std::fabs(d) > 9007199254740992.0)
      return bad("bad " + key + ": too large for a JSON number, send it as "
                 "a string");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
    return std::string{buf};
  }
  return bad("bad " + key + ": expected a string or a number");
}

} // namespace

request to_request(const parsed_command& cmd) {
  request r;
  r.method = cmd.spec->method;
  auto rest = cmd.args;
  for (auto& seg : split(cmd.spec->path, '/')) {
    if (!r.target.empty() || !seg.empty())
      r.target += "/";
    auto name = placeholder(seg);
    if (name.empty()) {
      r.target += seg;
    } else {
      r.target += encode_segment(rest[name]);
      rest.erase(name);
    }
  }
  if (r.method == "GET") {
    char sep = '?';
    for (auto& [k, v] : rest) {
      r.target += sep + encode(k) + "=" + encode(v);
      sep = '&';
    }
    return r;
  }
  r.body = "{";
  for (auto& [k, v] : rest) {
    if (r.body.size() > 1)
      r.body += ",";
    auto* a = arg_named(*cmd.spec, k);
    // Past 2^53 a JSON number (a double) loses digits: send a string.
    bool as_number = a && numeric(a->kind) && v.size() <= 15;
    r.body += json_quote(k) + ":" + (as_number ? v : json_quote(v));
  }
  r.body += "}";
  return r;
}

std::variant<parsed_command, refusal>
from_request(const std::string& method, const std::string& target,
             const std::string& body) {
  if (body.size() > max_body)
    return refusal{413, "body too large (at most 65536 bytes)"};
  if (target.size() > max_target)
    return refusal{414, "target too long (at most 65536 bytes)"};
  if (target.empty() || target[0] != '/')
    return bad("bad target: it must start with /");
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string::npos ? std::string{} : target.substr(q + 1);
  std::vector<std::string> segs;
  for (auto& s : split(path, '/')) {
    auto d = decode(s, false);
    if (!d)
      return bad("bad percent-encoding in the target");
    segs.push_back(*d);
  }
  // The command whose path matches; literal segments must be equal.
  const command_spec* match = nullptr;
  bool other_method = false;
  arg_values args;
  for (auto& c : commands()) {
    if (c.path.empty())
      continue;
    auto pattern = split(c.path, '/');
    if (pattern.size() != segs.size())
      continue;
    arg_values found;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      auto name = placeholder(pattern[i]);
      if (name.empty())
        ok = pattern[i] == segs[i];
      else if (segs[i].empty())
        ok = false;
      else
        found[name] = segs[i];
    }
    if (!ok)
      continue;
    if (c.method != method) {
      other_method = true;
      continue;
    }
    match = &c;
    args = std::move(found);
    break;
  }
  if (!match)
    return other_method ? refusal{405, "method " + method
                                         + " not allowed on " + path}
                        : refusal{404, "no admin endpoint " + path};
  // The other arguments: the query string of a GET, the body of a POST.
  arg_values rest;
  if (method == "GET") {
    for (auto& pair : split(query, '&')) {
      if (pair.empty())
        continue;
      auto eq = pair.find('=');
      auto k = decode(pair.substr(0, eq), true);
      auto v = decode(eq == std::string::npos ? "" : pair.substr(eq + 1),
                      true);
      if (!k || !v)
        return bad("bad percent-encoding in the query string");
      if (!rest.emplace(*k, *v).second)
        return bad("argument " + *k + " given twice");
    }
  } else {
    if (!query.empty())
      return bad("a POST takes its arguments in a JSON body, not the query");
    auto first = body.find_first_not_of(" \t\r\n");
    if (first != std::string::npos) {
      google::protobuf::Struct obj;
      auto st = google::protobuf::util::JsonStringToMessage(body, &obj);
      if (!st.ok() || body[first] != '{')
        return bad("the body is not a JSON object");
      for (auto& [k, v] : obj.fields()) {
        auto t = value_text(k, v);
        if (auto* r = std::get_if<refusal>(&t))
          return *r;
        rest.emplace(k, std::get<std::string>(t));
      }
    }
  }
  for (auto& [k, v] : rest) {
    if (!arg_named(*match, k))
      return bad("unknown argument " + k + " for " + match->name);
    if (!args.emplace(k, v).second)
      return bad("argument " + k + " given twice");
  }
  parsed_command out{match, {}};
  for (auto& a : match->args) {
    auto it = args.find(a.name);
    if (it == args.end()) {
      if (a.optional)
        continue;
      return bad("missing argument " + a.name + " for " + match->name);
    }
    auto v = check_arg(a, it->second);
    if (v.index() == 1)
      return bad(std::get<1>(v));
    out.args[a.name] = std::get<0>(v);
  }
  return out;
}

} // namespace parley::admin
