#include "tools/parleyctl/json.hpp"

#include <cctype>
#include <cstdlib>

#include "runtime/admin/json_text.hpp"

namespace parley::ctl {

namespace {

struct parser {
  const std::string& s;
  size_t i = 0;

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'
                            || s[i] == '\r'))
      ++i;
  }

  bool lit(const char* word) {
    std::string w{word};
    if (s.compare(i, w.size(), w) != 0)
      return false;
    i += w.size();
    return true;
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool hex4(unsigned& out) {
    if (i + 4 > s.size())
      return false;
    out = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      if (!std::isxdigit(static_cast<unsigned char>(c)))
        return false;
      out = out * 16
            + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(c))
                                      ? c - '0'
                                      : std::tolower(c) - 'a' + 10);
    }
    return true;
  }

  bool str(std::string& out) {
    if (i >= s.size() || s[i] != '"')
      return false;
    ++i;
    while (i < s.size()) {
      char c = s[i++];
      if (c == '"')
        return true;
      if (static_cast<unsigned char>(c) < 0x20)
        return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size())
        return false;
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp;
          if (!hex4(cp))
            return false;
          if (cp >= 0xD800 && cp < 0xDC00 && lit("\\u")) {
            unsigned lo;
            if (!hex4(lo) || lo < 0xDC00 || lo >= 0xE000)
              return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  bool number(std::string& out) {
    size_t start = i;
    if (i < s.size() && s[i] == '-')
      ++i;
    size_t digits = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i]))
                            || s[i] == '.' || s[i] == 'e' || s[i] == 'E'
                            || s[i] == '+' || s[i] == '-'))
      ++i;
    if (i == digits)
      return false;
    out = s.substr(start, i - start);
    char* end = nullptr;
    std::strtod(out.c_str(), &end);
    return end == out.c_str() + out.size();
  }

  bool value(json& v, int depth) {
    if (depth > 64)
      return false;
    ws();
    if (i >= s.size())
      return false;
    char c = s[i];
    if (c == '{') {
      v.kind = json::object;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}')
        return ++i, true;
      while (true) {
        ws();
        std::string key;
        if (!str(key))
          return false;
        ws();
        if (i >= s.size() || s[i++] != ':')
          return false;
        json item;
        if (!value(item, depth + 1))
          return false;
        v.fields.emplace_back(std::move(key), std::move(item));
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        return i < s.size() && s[i++] == '}';
      }
    }
    if (c == '[') {
      v.kind = json::array;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']')
        return ++i, true;
      while (true) {
        json item;
        if (!value(item, depth + 1))
          return false;
        v.items.push_back(std::move(item));
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        return i < s.size() && s[i++] == ']';
      }
    }
    if (c == '"') {
      v.kind = json::string;
      return str(v.text);
    }
    if (lit("true") || lit("false")) {
      v.kind = json::boolean;
      v.text = s[i - 1] == 'e' && s[i - 2] == 'u' ? "true" : "false";
      return true;
    }
    if (lit("null")) {
      v.kind = json::null;
      return true;
    }
    v.kind = json::number;
    return number(v.text);
  }
};

} // namespace

const json* json::get(const std::string& key) const {
  for (auto& [k, v] : fields)
    if (k == key)
      return &v;
  return nullptr;
}

std::string json::str(const std::string& key) const {
  auto* v = get(key);
  return v && v->scalar() ? v->text : std::string{};
}

double json::num(const std::string& key) const {
  auto* v = get(key);
  return v && v->kind == number ? std::strtod(v->text.c_str(), nullptr) : 0;
}

std::optional<json> parse_json(const std::string& text) {
  parser p{text};
  json v;
  if (!p.value(v, 0))
    return std::nullopt;
  p.ws();
  if (p.i != text.size())
    return std::nullopt;
  return v;
}

std::string to_json(const json& v) {
  switch (v.kind) {
    case json::null:
      return "null";
    case json::boolean:
    case json::number:
      return v.text;
    case json::string:
      return json_quote(v.text);
    case json::array: {
      std::string s = "[";
      for (auto& item : v.items)
        s += (s.size() > 1 ? "," : "") + to_json(item);
      return s + "]";
    }
    case json::object: {
      std::string s = "{";
      for (auto& [k, item] : v.fields)
        s += (s.size() > 1 ? "," : "") + json_quote(k) + ":" + to_json(item);
      return s + "}";
    }
  }
  return "null";
}

} // namespace parley::ctl
