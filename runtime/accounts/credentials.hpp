#pragma once

// Secrets, by libsodium: Argon2id password hashes (crypto_pwhash_str) and
// 256-bit random bearer tokens stored only as their BLAKE2b-256 hash. The
// only code that touches raw secrets. Hashing a password is slow on
// purpose: call it from a detached actor, never a scheduler thread.

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

/// A new bearer token: 32 random bytes, URL-safe base64 (43 characters).
std::string new_token();

/// The stored form of a token: its BLAKE2b-256 hash (32 raw bytes).
std::string token_hash(std::string_view token);

/// True if `token` hashes to `hash` (raw 32 bytes), compared in constant
/// time.
bool token_matches(std::string_view token, const std::string& hash);

/// The raw bytes of a 64-digit hex string (as `b2sum -l 256` prints a
/// hash); empty if it is not one.
std::string from_hex32(std::string_view hex);

} // namespace parley::credentials
