#include "runtime/gateway/strict_json.hpp"

#include <cstdint>
#include <vector>

namespace parley::gateway {

namespace {

/// Scans `text` once; every step either advances or fails.
class scanner {
public:
  scanner(std::string_view text, json_limits lim) : s_(text), lim_(lim) {
  }

  std::string run();

private:
  /// What may come next.
  enum class want {
    value,          ///< any value
    value_or_close, ///< after '[': a value or ']'
    key_or_close,   ///< after '{': a key or '}'
    key,            ///< after ',' in an object
    colon,          ///< after a key
    comma_or_close, ///< after a member or element
  };

  bool at_end() const {
    return i_ >= s_.size();
  }

  unsigned char peek() const {
    return static_cast<unsigned char>(s_[i_]);
  }

  void skip_ws() {
    while (!at_end()
           && (peek() == ' ' || peek() == '\t' || peek() == '\n'
               || peek() == '\r'))
      ++i_;
  }

  bool fail(const char* why) {
    if (error_.empty())
      error_ = "at byte " + std::to_string(i_) + ": " + why;
    return false;
  }

  bool string();
  bool utf8();
  bool number();
  bool literal(std::string_view word);
  bool scalar();

  std::string_view s_;
  json_limits lim_;
  size_t i_ = 0;
  std::string error_;
};

bool is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
         || (c >= 'A' && c <= 'F');
}

bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

/// One UTF-8 sequence of two to four bytes at i_ (RFC 3629: no overlong
/// forms, no surrogates, nothing above U+10FFFF).
bool scanner::utf8() {
  auto c = peek();
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 1;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 2;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 3;
    cp = c & 0x07;
  } else {
    return fail("invalid UTF-8");
  }
  if (i_ + n >= s_.size())
    return fail("truncated UTF-8 sequence");
  for (size_t k = 1; k <= n; ++k) {
    auto b = static_cast<unsigned char>(s_[i_ + k]);
    if ((b & 0xC0) != 0x80)
      return fail("invalid UTF-8");
    cp = (cp << 6) | (b & 0x3F);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF
      || (cp >= 0xD800 && cp <= 0xDFFF))
    return fail("invalid UTF-8");
  i_ += n + 1;
  return true;
}

bool scanner::string() {
  ++i_; // the opening quote
  while (true) {
    if (at_end())
      return fail("unterminated string");
    auto c = peek();
    if (c == '"') {
      ++i_;
      return true;
    }
    if (c < 0x20)
      return fail("control character in a string (escape it)");
    if (c >= 0x80) {
      if (!utf8())
        return false;
      continue;
    }
    if (c != '\\') {
      ++i_;
      continue;
    }
    ++i_;
    if (at_end())
      return fail("unterminated string");
    switch (peek()) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n':
      case 'r': case 't':
        ++i_;
        break;
      case 'u':
        ++i_;
        for (int k = 0; k < 4; ++k, ++i_)
          if (at_end() || !is_hex(peek()))
            return fail("\\u needs four hex digits");
        break;
      default:
        return fail("invalid escape in a string");
    }
  }
}

bool scanner::number() {
  if (peek() == '-')
    ++i_;
  if (at_end() || !is_digit(peek()))
    return fail("a number needs a digit");
  if (peek() == '0') {
    ++i_;
    if (!at_end() && is_digit(peek()))
      return fail("leading zero in a number");
  } else {
    while (!at_end() && is_digit(peek()))
      ++i_;
  }
  if (!at_end() && peek() == '.') {
    ++i_;
    if (at_end() || !is_digit(peek()))
      return fail("a fraction needs a digit");
    while (!at_end() && is_digit(peek()))
      ++i_;
  }
  if (!at_end() && (peek() == 'e' || peek() == 'E')) {
    ++i_;
    if (!at_end() && (peek() == '+' || peek() == '-'))
      ++i_;
    if (at_end() || !is_digit(peek()))
      return fail("an exponent needs a digit");
    while (!at_end() && is_digit(peek()))
      ++i_;
  }
  return true;
}

bool scanner::literal(std::string_view word) {
  if (s_.substr(i_, word.size()) != word)
    return fail("expected a value (strings take double quotes)");
  i_ += word.size();
  return true;
}

bool scanner::scalar() {
  switch (peek()) {
    case '"': return string();
    case 't': return literal("true");
    case 'f': return literal("false");
    case 'n': return literal("null");
    default:
      if (peek() == '-' || is_digit(peek()))
        return number();
      return fail("expected a value (strings take double quotes)");
  }
}

std::string scanner::run() {
  if (s_.size() > lim_.max_bytes)
    return "longer than " + std::to_string(lim_.max_bytes) + " bytes";
  std::vector<char> open; // '{' or '[' per nesting level
  auto w = want::value;
  while (true) {
    skip_ws();
    if (at_end()) {
      fail("unexpected end of input");
      return error_;
    }
    auto c = peek();
    bool ok = true;
    bool closed = false;
    switch (w) {
      case want::value_or_close:
      case want::key_or_close: {
        // Right after '[' or '{': its closer, or what follows a ','.
        bool object = w == want::key_or_close;
        if (c == (object ? '}' : ']')) {
          closed = true;
          break;
        }
        w = object ? want::key : want::value;
        continue; // nothing consumed: the same byte, in the new state
      }
      case want::value:
        if (c == '{' || c == '[') {
          if (open.size() >= lim_.max_depth) {
            fail("nested too deeply");
            return error_;
          }
          open.push_back(static_cast<char>(c));
          ++i_;
          w = c == '{' ? want::key_or_close : want::value_or_close;
          continue;
        }
        if (c == ']' && !open.empty() && open.back() == '[')
          ok = fail("trailing comma");
        else
          ok = scalar();
        w = want::comma_or_close;
        break;
      case want::key:
        if (c == '"')
          ok = string();
        else if (c == '}')
          ok = fail("trailing comma");
        else
          ok = fail("object keys must be strings in double quotes");
        w = want::colon;
        break;
      case want::colon:
        ok = c == ':' ? (++i_, true) : fail("expected ':'");
        w = want::value;
        break;
      case want::comma_or_close:
        if (c == ',') {
          ++i_;
          w = open.back() == '{' ? want::key : want::value;
        } else if (c == (open.back() == '{' ? '}' : ']')) {
          closed = true;
        } else {
          ok = fail(open.back() == '{' ? "expected ',' or '}'"
                                       : "expected ',' or ']'");
        }
        break;
    }
    if (!ok)
      return error_;
    if (closed) {
      ++i_;
      open.pop_back();
      w = want::comma_or_close;
    }
    if (w == want::comma_or_close && open.empty())
      break; // the one top-level value is complete
  }
  skip_ws();
  if (!at_end())
    fail("text after the value");
  return error_;
}

} // namespace

std::string strict_json_error(std::string_view text, json_limits lim) {
  return scanner{text, lim}.run();
}

} // namespace parley::gateway
