#include "runtime/accounts/credentials.hpp"

#include <sodium.h>

#include <cstdint>
#include <vector>

namespace parley::credentials {

bool init() {
  return sodium_init() >= 0;
}

std::string hash_password(std::string_view password,
                          std::string_view strength) {
  char out[crypto_pwhash_STRBYTES];
  auto ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  auto mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  if (strength == "min") {
    ops = crypto_pwhash_OPSLIMIT_MIN;
    mem = crypto_pwhash_MEMLIMIT_MIN;
  }
  if (crypto_pwhash_str(out, password.data(), password.size(), ops, mem) != 0)
    return {}; // out of memory
  return out;
}

bool verify_password(const std::string& hash, std::string_view password) {
  return !hash.empty()
         && crypto_pwhash_str_verify(hash.c_str(), password.data(),
                                     password.size())
              == 0;
}

std::string random_secret(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  std::vector<char> out(
    sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
  sodium_bin2base64(out.data(), out.size(), raw.data(), raw.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw.data(), raw.size());
  std::string secret = out.data();
  sodium_memzero(out.data(), out.size());
  return secret;
}

std::string new_token(uint64_t user) {
  return std::to_string(user) + "." + random_secret(32);
}

std::optional<uint64_t> token_user(std::string_view token) {
  auto dot = token.find('.');
  if (dot == std::string_view::npos)
    return uint64_t{0}; // issued before tokens carried their user
  auto digits = token.substr(0, dot);
  if (digits.empty() || digits.size() > 20 || digits[0] == '0')
    return std::nullopt;
  uint64_t user = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    if (user > (UINT64_MAX - d) / 10)
      return std::nullopt; // over 2^64 - 1
    user = user * 10 + d;
  }
  return user;
}

std::string token_hash(std::string_view token) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h,
                     reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return std::string(reinterpret_cast<char*>(h), sizeof h);
}

bool token_matches(std::string_view token, const std::string& hash) {
  auto h = token_hash(token);
  return hash.size() == h.size()
         && sodium_memcmp(h.data(), hash.data(), h.size()) == 0;
}

std::string from_hex32(std::string_view hex) {
  if (hex.size() != 64)
    return {};
  std::string out(32, '\0');
  size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     hex.data(), hex.size(), nullptr, &len, nullptr)
        != 0
      || len != 32)
    return {};
  return out;
}

} // namespace parley::credentials
