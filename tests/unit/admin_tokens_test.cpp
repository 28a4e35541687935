// The admin tokens file (runtime/admin/admin_tokens.hpp): its parser, the
// file checks, adding a token, and the store that reads it again. And the
// admin port's routing: every command of the table has a handler.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/accounts/credentials.hpp"
#include "runtime/admin/admin_tokens.hpp"
#include "runtime/admin/handlers.hpp"

namespace {

using namespace parley;
using admin::parse_tokens;

const std::string hash_a(64, 'a');
const std::string hash_b =
  "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";

/// The error of a parse, or "" if it parsed.
std::string error_of(const std::variant<std::vector<admin::admin_token>,
                                        std::string>& r) {
  return r.index() == 1 ? std::get<1>(r) : std::string{};
}

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path()
           / ("parley-tokens-" + std::to_string(getpid()) + "-"
              + std::to_string(n++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const {
    return (path / name).string();
  }
};

/// The tokens file's HEX64 of `token`.
std::string hex_hash(const std::string& token) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : credentials::token_hash(token)) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

void write_file(const std::string& path, const std::string& text,
                mode_t mode) {
  std::ofstream{path, std::ios::binary | std::ios::trunc} << text;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

} // namespace

TEST_CASE("an admin tokens file gives each named hash, skipping comments "
          "and blank lines") {
  auto r = parse_tokens("# the operators\n\nalice " + hash_a
                        + "\r\n  \t\nbob.ops-2 " + hash_b + "   # later?");
  // The trailing comment makes a line of four words: refused.
  CHECK(error_of(r).find("line 5") == 0);
  r = parse_tokens("# the operators\n\nalice " + hash_a + "\r\n  \t\n"
                   + "\tbob.ops-2   " + hash_b);
  REQUIRE(r.index() == 0);
  auto& tokens = std::get<0>(r);
  REQUIRE(tokens.size() == 2);
  CHECK(tokens[0].name == "alice");
  CHECK(tokens[0].hash == std::string(32, '\xaa'));
  CHECK(tokens[1].name == "bob.ops-2");
  CHECK(tokens[1].hash.size() == 32);
  CHECK(parse_tokens("").index() == 0);
}

TEST_CASE("malformed admin token lines are refused naming the line") {
  struct row {
    std::string text;
    std::string error_start;
  };
  std::vector<row> rows{
    {"alice " + hash_a + "\n" + std::string("\x01\xff\x00garbage", 11),
     "line 2: expected NAME HASH"},
    {"alice " + hash_a.substr(0, 40), "line 1: the hash of token alice"},
    {"alice\n", "line 1: expected NAME HASH"},
    {"alice " + hash_a + " extra", "line 1: expected NAME HASH"},
    {"al/ice " + hash_a, "line 1: a token name"},
    {std::string(65, 'n') + " " + hash_a, "line 1: a token name"},
    {"alice " + std::string(63, 'a') + "g", "line 1: the hash"},
    {"alice " + hash_a + "\nbob " + hash_b + "\nalice " + hash_b,
     "line 3: the name alice is given twice"},
    {std::string(admin::max_tokens_file_bytes + 1, '#'), "larger than"},
  };
  for (auto& r : rows) {
    CAPTURE(r.error_start);
    auto err = error_of(parse_tokens(r.text));
    CHECK(err.rfind(r.error_start, 0) == 0);
  }
}

TEST_CASE("a tokens file group or others can read is refused, a missing "
          "one only when it was named") {
  temp_dir d;
  auto f = d.file("admin-tokens");
  CHECK(error_of(admin::load_tokens(f, true)).empty());
  CHECK(error_of(admin::load_tokens(f, false)).find("cannot read") == 0);
  write_file(f, "alice " + hash_a + "\n", 0644);
  auto err = error_of(admin::load_tokens(f, true));
  CHECK(err.find("mode 0644") != std::string::npos);
  CHECK(err.find("chmod 600") != std::string::npos);
  write_file(f, "alice " + hash_a + "\n", 0640);
  CHECK(!error_of(admin::load_tokens(f, true)).empty());
  write_file(f, "alice " + hash_a + "\n", 0600);
  auto ok = admin::load_tokens(f, true);
  REQUIRE(ok.index() == 0);
  CHECK(std::get<0>(ok).size() == 1);
  // Oversized: refused before it is parsed.
  write_file(f, std::string(admin::max_tokens_file_bytes + 10, '#'), 0600);
  CHECK(error_of(admin::load_tokens(f, true)).find("larger than")
        != std::string::npos);
}

TEST_CASE("an added admin token is stored hashed in a 0600 file and "
          "matches under its name") {
  REQUIRE(credentials::init());
  temp_dir d;
  auto f = d.file("admin-tokens");
  auto a = admin::add_token(f, "alice");
  REQUIRE(a.error.empty());
  CHECK(a.token.size() == 43); // 32 bytes, base64url without padding
  struct stat st {};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::ifstream in{f};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  CHECK(text.find(a.token) == std::string::npos);
  CHECK(admin::add_token(f, "alice").error.find("already has a token named "
                                                "alice")
        != std::string::npos);
  CHECK(!admin::add_token(f, "bad name").error.empty());
  auto got = admin::token_store::open(
    {{"operator", credentials::token_hash("op-token")}}, f, false);
  REQUIRE(got.index() == 0);
  auto store = std::get<0>(got);
  CHECK(store->match(a.token) == "alice");
  CHECK(store->match("op-token") == "operator");
  CHECK(store->match(a.token + "x").empty());
  CHECK(store->match("").empty());
  // A token added while the store is open counts at once; a line removed
  // revokes it.
  auto b = admin::add_token(f, "bob");
  REQUIRE(b.error.empty());
  CHECK(store->match(b.token) == "bob");
  CHECK(store->size() == 3);
  std::ofstream{f, std::ios::trunc}
    << "alice " << text.substr(text.find(' ') + 1);
  CHECK(store->match(b.token).empty());
  CHECK(store->match(a.token) == "alice");
  // A file that turns bad refuses its tokens (fails closed), the flag's
  // token still counts; good again, its tokens count again.
  auto good = "alice " + text.substr(text.find(' ') + 1);
  write_file(f, "garbage\n", 0600);
  CHECK(store->match(a.token).empty());
  CHECK(store->match("op-token") == "operator");
  CHECK(store->size() == 1);
  write_file(f, good, 0600);
  CHECK(store->match(a.token) == "alice");
}

TEST_CASE("a token removed by an edit that left the tokens file 0644 is "
          "refused once the file is chmod 600, and no file token is "
          "accepted while it is 0644") {
  REQUIRE(credentials::init());
  temp_dir d;
  auto f = d.file("admin-tokens");
  auto a = admin::add_token(f, "alice");
  auto b = admin::add_token(f, "bob");
  REQUIRE(a.error.empty());
  REQUIRE(b.error.empty());
  auto got = admin::token_store::open(
    {{"operator", credentials::token_hash("op-token")}}, f, false);
  REQUIRE(got.index() == 0);
  auto store = std::get<0>(got);
  CHECK(store->match(b.token) == "bob");
  // The editor drops bob's line and writes the file 0644 (same inode).
  std::ifstream in{f};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  auto alice_line = text.substr(0, text.find('\n') + 1);
  REQUIRE(alice_line.rfind("alice ", 0) == 0);
  write_file(f, alice_line, 0644);
  CHECK(store->match(a.token).empty());
  CHECK(store->match(b.token).empty());
  CHECK(store->match("op-token") == "operator");
  // chmod alone (no write): the file is read again.
  REQUIRE(::chmod(f.c_str(), 0600) == 0);
  CHECK(store->match(b.token).empty());
  CHECK(store->match(a.token) == "alice");
  CHECK(store->size() == 2);
}

TEST_CASE("a same-size rewrite of the tokens file that keeps its mtime is "
          "read again") {
  REQUIRE(credentials::init());
  temp_dir d;
  auto f = d.file("admin-tokens");
  write_file(f, "alice " + hex_hash("token-a") + "\n", 0600);
  auto got = admin::token_store::open({}, f, false);
  REQUIRE(got.index() == 0);
  auto store = std::get<0>(got);
  CHECK(store->match("token-a") == "alice");
  struct stat before {};
  REQUIRE(::stat(f.c_str(), &before) == 0);
  // Rewritten in place, same size, mtime set back: as a rewrite within
  // one timestamp tick looks.
  write_file(f, "alice " + hex_hash("token-b") + "\n", 0600);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, f.c_str(), times, 0) == 0);
  struct stat after {};
  REQUIRE(::stat(f.c_str(), &after) == 0);
  REQUIRE(after.st_size == before.st_size);
  REQUIRE(after.st_ino == before.st_ino);
  CHECK(store->match("token-a").empty());
  CHECK(store->match("token-b") == "alice");
}

TEST_CASE("a file token named operator (the name of the flag's token) is "
          "refused") {
  REQUIRE(credentials::init());
  temp_dir d;
  auto f = d.file("admin-tokens");
  auto err = error_of(parse_tokens("operator " + hash_a));
  CHECK(err.rfind("line 1: the token name operator is kept for "
                  "--parley.admin-token-hash",
                  0)
        == 0);
  CHECK(admin::add_token(f, "operator").error.find("is kept for")
        != std::string::npos);
  // At start: the node refuses the file, saying why.
  write_file(f, "operator " + hex_hash("file-token") + "\n", 0600);
  auto refused = admin::token_store::open(
    {{"operator", credentials::token_hash("op-token")}}, f, false);
  REQUIRE(refused.index() == 1);
  CHECK(std::get<1>(refused).find("operator is kept for")
        != std::string::npos);
  // At run time: the file is bad, only the flag's token counts.
  write_file(f, "alice " + hex_hash("token-a") + "\n", 0600);
  auto got = admin::token_store::open(
    {{"operator", credentials::token_hash("op-token")}}, f, false);
  REQUIRE(got.index() == 0);
  auto store = std::get<0>(got);
  CHECK(store->match("token-a") == "alice");
  write_file(f, "alice " + hex_hash("token-a") + "\noperator "
                  + hex_hash("file-token") + "\n",
             0600);
  CHECK(store->match("file-token").empty());
  CHECK(store->match("token-a").empty());
  CHECK(store->match("op-token") == "operator");
}

TEST_CASE("a token appended to a file whose last line has no newline "
          "starts a line of its own") {
  REQUIRE(credentials::init());
  temp_dir d;
  auto f = d.file("admin-tokens");
  write_file(f, "alice " + hash_a, 0600);
  auto b = admin::add_token(f, "bob");
  REQUIRE(b.error.empty());
  auto r = admin::load_tokens(f, false);
  REQUIRE(r.index() == 0);
  CHECK(std::get<0>(r).size() == 2);
  write_file(f, "alice " + hash_a + "\n", 0604);
  CHECK(admin::add_token(f, "carol").error.find("mode 0604")
        != std::string::npos);
}

TEST_CASE("every command of the table has a handler on the node") {
  admin::handler_table t;
  admin::env e; // registering touches nothing of it
  admin::add_all_handlers(t, e);
  CHECK(t.missing() == std::vector<std::string>{});
}
