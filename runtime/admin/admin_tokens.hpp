#pragma once

// admin_tokens: the named tokens that open a node's admin port (issue 23).
// Each is stored only as its BLAKE2b-256 hash, in a tokens file readable by
// its owner alone (--parley.admin-tokens, default DATA_DIR/admin-tokens):
//
//   # comment
//   NAME HEX64
//
// NAME: 1-64 of [A-Za-z0-9._-], unique in the file; HEX64: the hash as 64
// hex digits (as `printf %s TOKEN | b2sum -l 256` prints it). A token is
// 32 random bytes, URL-safe base64 without padding (43 characters), shown
// once by `parleyd --admin-token-add NAME`. The name is what the node's log
// shows for each admin action. The name "operator" is kept for the token
// of --parley.admin-token-hash: a file line with it is refused.

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <sys/types.h>

namespace parley::admin {

struct admin_token {
  std::string name;
  std::string hash; ///< raw 32 bytes
};

/// The largest tokens file read.
inline constexpr size_t max_tokens_file_bytes = 64 * 1024;

/// The name of --parley.admin-token-hash's token; no file token has it.
inline constexpr std::string_view flag_token_name = "operator";

/// Whether `name` may name a token: 1-64 of [A-Za-z0-9._-].
bool valid_token_name(std::string_view name);

/// Parses a tokens file's text; the tokens, or a message naming the first
/// bad line ("line 3: ..."): a line that is not NAME HEX64, a bad name, a
/// name given twice, the name flag_token_name, text over
/// max_tokens_file_bytes.
std::variant<std::vector<admin_token>, std::string>
parse_tokens(std::string_view text);

/// Reads and parses the tokens file `path`. A missing file has no tokens
/// if `missing_ok`, else it is an error. Refused with a message saying
/// what to do: a file that group or others may read or write, one that is
/// not a regular file, one over max_tokens_file_bytes.
std::variant<std::vector<admin_token>, std::string>
load_tokens(const std::string& path, bool missing_ok);

/// What add_token made: the token (to be shown once), or an error.
struct added_token {
  std::string token;
  std::string error;
};

/// Makes a new random token named `name` and appends "NAME HEX64" to
/// `path` (created with mode 0600 if missing; locked while it is read and
/// appended). Refuses a bad name, flag_token_name, a name the file already
/// has, and a file load_tokens would refuse.
added_token add_token(const std::string& path, const std::string& name);

/// The tokens a node accepts: `fixed` ones (--parley.admin-token-hash, as
/// flag_token_name) and those of the tokens file, which is checked at every
/// match() and read again when it changed (a token added or removed while
/// the node runs counts at once). A change is any of mtime, ctime, size,
/// inode or mode (a chmod counts); a file changed less than a second
/// before it was read is read again at the next match() (a rewrite within
/// one timestamp tick leaves the stamp as it was). Fails closed: while the
/// file is bad (a mode group or others may use, a bad line, ...) no token
/// of the file is accepted, only the fixed ones, and the log says why at
/// error level; the file's tokens count again once it is good. Thread-safe.
class token_store {
public:
  /// Reads `file` (empty: no file); an error message if it is refused
  /// (see load_tokens; a missing file is fine if `missing_ok`).
  static std::variant<std::shared_ptr<token_store>, std::string>
  open(std::vector<admin_token> fixed, std::string file, bool missing_ok);

  /// The name of the token `presented` is, or empty if none. Every stored
  /// hash is compared in constant time.
  std::string match(std::string_view presented);

  /// Tokens accepted now.
  size_t size();

private:
  token_store() = default;
  void refresh(bool log = true); // with mu_ held

  std::mutex mu_;
  std::vector<admin_token> fixed_, from_file_;
  std::string file_;
  bool missing_ok_ = true;
  std::string bad_; // why the file is refused now, or empty
  // What the last read saw; read again on a change. `racy`: the file
  // changed too shortly before it was read for the stamp to be trusted.
  struct stamp {
    int64_t mtime_ns = -1, ctime_ns = -1;
    int64_t size = -1;
    ino_t inode = 0;
    mode_t mode = 0;
    bool racy = false;
    bool operator==(const stamp& o) const {
      return !racy && !o.racy && mtime_ns == o.mtime_ns
             && ctime_ns == o.ctime_ns && size == o.size && inode == o.inode
             && mode == o.mode;
    }
  } seen_;
};

} // namespace parley::admin
