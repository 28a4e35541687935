// Base64 (RFC 4648, standard alphabet, padded) for etcd's JSON keys and
// values. Decoding is strict: any other character, a missing or misplaced
// '=' is refused.

#include "runtime/cluster/etcd_json.hpp"

#include <cstdint>
#include <cstring>

namespace parley::cluster::etcd_json {

namespace {

constexpr char b64_chars[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

} // namespace

std::string b64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6)
      out += b64_chars[(n >> s) & 63];
  }
  if (auto rest = in.size() - i; rest > 0) {
    uint32_t n = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out += b64_chars[(n >> 18) & 63];
    out += b64_chars[(n >> 12) & 63];
    out += rest == 2 ? b64_chars[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> b64_decode(std::string_view in) {
  if (in.size() % 4 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t n = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = in[i + k];
      int d = -1;
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
        d = 0;
      } else if (pad == 0) {
        if (auto* p = std::strchr(b64_chars, c); p != nullptr && c != '\0')
          d = static_cast<int>(p - b64_chars);
      }
      if (d < 0)
        return std::nullopt;
      n = n << 6 | static_cast<uint32_t>(d);
    }
    out += static_cast<char>(n >> 16);
    if (pad < 2)
      out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1)
      out += static_cast<char>(n & 0xff);
  }
  return out;
}

} // namespace parley::cluster::etcd_json
