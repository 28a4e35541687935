#include "runtime/admin/admin_tokens.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "runtime/accounts/credentials.hpp"

namespace parley::admin {

namespace {

std::string hex(const std::string& raw) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

/// The refusal of an open file's status, or empty.
std::string check_stat(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode))
    return "the admin tokens file " + path + " is not a regular file";
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return "the admin tokens file " + path + " has mode "
           + mode_text(st.st_mode)
           + ": group and others must have no access (chmod 600 " + path
           + ")";
  if (static_cast<uint64_t>(st.st_size) > max_tokens_file_bytes)
    return "the admin tokens file " + path + " is larger than "
           + std::to_string(max_tokens_file_bytes) + " bytes";
  return {};
}

/// Reads what is left of `fd` (at most one byte past the limit).
std::variant<std::string, std::string> read_all(int fd,
                                                const std::string& path) {
  std::string text;
  char buf[4096];
  while (text.size() <= max_tokens_file_bytes) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return std::variant<std::string, std::string>{
        std::in_place_index<1>, "cannot read the admin tokens file " + path
                                  + ": " + std::strerror(errno)};
    if (n == 0)
      break;
    text.append(buf, static_cast<size_t>(n));
  }
  return std::variant<std::string, std::string>{std::in_place_index<0>,
                                                std::move(text)};
}

using tokens_or_error = std::variant<std::vector<admin_token>, std::string>;

std::string reserved_name_text() {
  return "the token name " + std::string{flag_token_name}
         + " is kept for --parley.admin-token-hash's token (the log could "
           "not tell them apart): give this token another name";
}

int64_t ns_of(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

tokens_or_error load_fd(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return "cannot read the admin tokens file " + path + ": "
           + std::strerror(errno);
  if (auto bad = check_stat(path, st); !bad.empty())
    return bad;
  auto text = read_all(fd, path);
  if (text.index() == 1)
    return std::get<1>(text);
  auto parsed = parse_tokens(std::get<0>(text));
  if (parsed.index() == 1)
    return "the admin tokens file " + path + ": " + std::get<1>(parsed);
  return parsed;
}

} // namespace

bool valid_token_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_'
          || c == '-'))
      return false;
  return true;
}

std::variant<std::vector<admin_token>, std::string>
parse_tokens(std::string_view text) {
  if (text.size() > max_tokens_file_bytes)
    return "larger than " + std::to_string(max_tokens_file_bytes) + " bytes";
  std::vector<admin_token> out;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos)
      end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    auto at = "line " + std::to_string(line_no) + ": ";
    std::vector<std::string_view> words;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t'
                                 || line[i] == '\r'))
        ++i;
      auto start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t'
             && line[i] != '\r')
        ++i;
      if (i > start)
        words.push_back(line.substr(start, i - start));
    }
    if (words.empty() || words[0][0] == '#')
      continue;
    if (words.size() != 2)
      return at + "expected NAME HASH (a name, then 64 hex digits), found "
             + std::to_string(words.size()) + " words";
    if (!valid_token_name(words[0]))
      return at + "a token name is 1-64 of A-Z a-z 0-9 . _ -";
    if (words[0] == flag_token_name)
      return at + reserved_name_text();
    auto hash = credentials::from_hex32(words[1]);
    if (hash.size() != 32)
      return at + "the hash of token " + std::string{words[0]}
             + " must be 64 hex digits (BLAKE2b-256)";
    for (auto& t : out)
      if (t.name == words[0])
        return at + "the name " + t.name + " is given twice";
    out.push_back({std::string{words[0]}, std::move(hash)});
  }
  return out;
}

std::variant<std::vector<admin_token>, std::string>
load_tokens(const std::string& path, bool missing_ok) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT && missing_ok)
      return std::vector<admin_token>{};
    return "cannot read the admin tokens file " + path + ": "
           + std::strerror(errno);
  }
  auto out = load_fd(fd, path);
  ::close(fd);
  return out;
}

added_token add_token(const std::string& path, const std::string& name) {
  if (!valid_token_name(name))
    return {{}, "a token name is 1-64 of A-Z a-z 0-9 . _ -"};
  if (name == flag_token_name)
    return {{}, reserved_name_text()};
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                  0600);
  if (fd < 0)
    return {{}, "cannot open the admin tokens file " + path + ": "
                  + std::strerror(errno)};
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } closing{fd};
  if (::flock(fd, LOCK_EX) != 0)
    return {{}, "cannot lock " + path + ": " + std::strerror(errno)};
  auto existing = load_fd(fd, path);
  if (existing.index() == 1)
    return {{}, std::get<1>(existing)};
  for (auto& t : std::get<0>(existing))
    if (t.name == name)
      return {{}, "the admin tokens file " + path + " already has a token "
                    "named " + name + " (remove its line to replace it)"};
  std::string token = credentials::random_secret(32);
  std::string line = name + " " + hex(credentials::token_hash(token)) + "\n";
  // A last line without its newline gets one first.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
      line = "\n" + line;
  }
  if (::lseek(fd, 0, SEEK_END) < 0
      || ::write(fd, line.data(), line.size())
           != static_cast<ssize_t>(line.size())
      || ::fsync(fd) != 0)
    return {{}, "cannot write the admin tokens file " + path + ": "
                  + std::strerror(errno)};
  return {std::move(token), {}};
}

// -- token_store ---------------------------------------------------------------

std::variant<std::shared_ptr<token_store>, std::string>
token_store::open(std::vector<admin_token> fixed, std::string file,
                  bool missing_ok) {
  std::shared_ptr<token_store> self{new token_store};
  self->fixed_ = std::move(fixed);
  self->file_ = std::move(file);
  self->missing_ok_ = missing_ok;
  self->seen_.racy = true; // read whatever the stamp
  std::lock_guard<std::mutex> guard{self->mu_};
  self->refresh(false);
  if (!self->bad_.empty())
    return self->bad_;
  return self;
}

void token_store::refresh(bool log) {
  if (file_.empty())
    return;
  struct stat st {};
  stamp now;
  if (::lstat(file_.c_str(), &st) == 0) {
    now.mtime_ns = ns_of(st.st_mtim);
    now.ctime_ns = ns_of(st.st_ctim);
    now.size = st.st_size;
    now.inode = st.st_ino;
    now.mode = st.st_mode;
  }
  if (now == seen_)
    return;
  seen_ = now;
  auto got = load_tokens(file_, missing_ok_);
  // A change within the same timestamp tick as the one just read would
  // leave the stamp as it is: until the file is a second old, read it
  // again at every check.
  struct timespec t {};
  ::clock_gettime(CLOCK_REALTIME, &t);
  seen_.racy = now.ctime_ns >= 0 && ns_of(t) - now.ctime_ns < 1000000000;
  if (got.index() == 1) {
    // Fail closed: a token removed by the edit that made the file bad
    // must not stay valid.
    from_file_.clear();
    if (log && bad_ != std::get<1>(got))
      spdlog::error("admin: refusing every token of the tokens file until "
                    "it is good again ({} accepted): {}",
                    fixed_.empty() ? "no token is"
                                   : "only --parley.admin-token-hash's is",
                    std::get<1>(got));
    bad_ = std::move(std::get<1>(got));
    return;
  }
  auto& next = std::get<0>(got);
  if (log && (!bad_.empty() || next.size() != from_file_.size()))
    spdlog::info("admin: tokens file read again file={} tokens={}", file_,
                 next.size());
  bad_.clear();
  from_file_ = std::move(next);
}

std::string token_store::match(std::string_view presented) {
  auto h = credentials::token_hash(presented);
  std::lock_guard<std::mutex> guard{mu_};
  refresh();
  std::string found;
  for (auto* set : {&fixed_, &from_file_})
    for (auto& t : *set)
      if (t.hash.size() == h.size()
          && sodium_memcmp(t.hash.data(), h.data(), h.size()) == 0
          && found.empty())
        found = t.name;
  return found;
}

size_t token_store::size() {
  std::lock_guard<std::mutex> guard{mu_};
  refresh();
  return fixed_.size() + from_file_.size();
}

} // namespace parley::admin
