#pragma once

// Secrets, by libsodium: Argon2id password hashes (crypto_pwhash_str) and
// 256-bit random bearer tokens stored only as their BLAKE2b-256 hash. The
// only code that touches raw secrets. Hashing a password is slow on
// purpose: call it from a detached actor, never a scheduler thread.
//
// Bearer tokens (a format: clients hold them, README's wire section):
//   "<user>.<secret>"  user: the user id in decimal (1-20 digits, no
//                      leading zero); secret: 32 random bytes, URL-safe
//                      base64 without padding (43 characters).
// The user prefix tells the server whose token it is (so which partition
// keeps its record) without a global table; the stored hash covers the
// whole token, prefix included, so a token whose prefix was edited matches
// no record. Tokens issued before the prefix are the bare 43-character
// secret (no '.'); they keep working through a lookup by hash alone.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::credentials {

/// Initializes libsodium; false if it cannot (then nothing here works).
bool init();

/// Argon2id hash of `password` in libsodium's self-describing string form.
/// `strength`: "interactive" (default) or "min" (tests only).
std::string hash_password(std::string_view password,
                          std::string_view strength = "interactive");

/// Constant-time check of `password` against a stored hash.
bool verify_password(const std::string& hash, std::string_view password);

/// `bytes` random bytes (libsodium) as unpadded base64url: a secret to hand
/// out once (tokens, generated passwords).
std::string random_secret(size_t bytes);

/// A new bearer token of `user` (> 0): "<user>.<secret>" as above.
std::string new_token(uint64_t user);

/// The user a presented token names: its prefix, or 0 for a token without
/// one (issued before tokens carried their user); nullopt for a token that
/// cannot be either (a bad prefix: empty, not decimal, a leading zero, 0,
/// or over 2^64 - 1). Says nothing about whether the token is valid.
std::optional<uint64_t> token_user(std::string_view token);

/// The stored form of a token: its BLAKE2b-256 hash (32 raw bytes).
std::string token_hash(std::string_view token);

/// True if `token` hashes to `hash` (raw 32 bytes), compared in constant
/// time.
bool token_matches(std::string_view token, const std::string& hash);

/// The raw bytes of a 64-digit hex string (as `b2sum -l 256` prints a
/// hash); empty if it is not one.
std::string from_hex32(std::string_view hex);

} // namespace parley::credentials
