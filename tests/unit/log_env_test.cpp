#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <leveldb/env.h>

#include "runtime/store/conversation_store.hpp"
#include "runtime/store/leveldb_backend.hpp"
#include "runtime/store/log_env.hpp"
#include "temp_dir.hpp"

using namespace parley;
namespace fs = std::filesystem;

namespace {

using scratch_dir = test::temp_dir;

std::string contents(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

bool all_zero(std::string_view s) {
  return s.find_first_not_of('\0') == std::string_view::npos;
}

/// The write-ahead log files in a LevelDB directory.
std::vector<fs::path> logs_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator{dir})
    if (e.path().extension() == ".log")
      out.push_back(e.path());
  return out;
}

stored_message message(sequence seq) {
  stored_message m;
  m.conversation = 9;
  m.seq = seq;
  m.sender_user = 1;
  m.sender_device = 1;
  m.client_message_id = "c" + std::to_string(seq);
  m.payload = std::string(100 + seq % 50, 'p');
  return m;
}

} // namespace

TEST_CASE("log env: records go over zeros written ahead, and close cuts them") {
  scratch_dir dir;
  auto env = make_log_env(leveldb::Env::Default(), 4096);
  auto name = (dir.path / "000007.log").string();
  leveldb::WritableFile* raw = nullptr;
  REQUIRE(env->NewWritableFile(name, &raw).ok());
  std::unique_ptr<leveldb::WritableFile> f{raw};
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    std::string rec(97, static_cast<char>('a' + i % 26));
    expected += rec;
    REQUIRE(f->Append(rec).ok());
  }
  REQUIRE(f->Sync().ok());
  // 9,700 bytes of records in three 4 KiB chunks: the rest is zeros.
  auto synced = contents(name);
  REQUIRE(synced.size() == 3 * 4096);
  CHECK(synced.substr(0, expected.size()) == expected);
  CHECK(all_zero(std::string_view{synced}.substr(expected.size())));
  // A sync that stays inside the chunk does not grow the file.
  REQUIRE(f->Append("tail").ok());
  expected += "tail";
  REQUIRE(f->Sync().ok());
  CHECK(fs::file_size(name) == 3 * 4096);
  // One append larger than a chunk.
  std::string big(10000, 'B');
  REQUIRE(f->Append(big).ok());
  expected += big;
  REQUIRE(f->Flush().ok());
  CHECK(fs::file_size(name) == 5 * 4096);
  REQUIRE(f->Close().ok());
  CHECK(contents(name) == expected);
}

TEST_CASE("log env: other files are the wrapped Env's, written as appended") {
  scratch_dir dir;
  auto env = make_log_env(leveldb::Env::Default(), 4096);
  for (auto leaf : {"MANIFEST-000001", "CURRENT", "LOG"}) {
    auto name = (dir.path / leaf).string();
    leveldb::WritableFile* raw = nullptr;
    REQUIRE(env->NewWritableFile(name, &raw).ok());
    std::unique_ptr<leveldb::WritableFile> f{raw};
    REQUIRE(f->Append("0123456789").ok());
    REQUIRE(f->Sync().ok());
    CHECK(fs::file_size(name) == 10);
    REQUIRE(f->Close().ok());
  }
}

namespace {

/// The default Env, but its sleeps are only counted: the pace of table
/// writes shows in what was asked for, not in how long the test took.
class counted_sleeps final : public leveldb::EnvWrapper {
public:
  counted_sleeps() : leveldb::EnvWrapper(leveldb::Env::Default()) {
  }

  void SleepForMicroseconds(int micros) override {
    total_us += micros;
    longest_us = std::max(longest_us, int64_t{micros});
    ++count;
  }

  int64_t total_us = 0;
  int64_t longest_us = 0;
  int count = 0;
};

} // namespace

TEST_CASE("log env: tables are written whole, a piece at a time, at the "
          "pace asked") {
  scratch_dir dir;
  counted_sleeps base;
  // 2 MiB at 8 MB/s: a pause per piece, a quarter of a second in all.
  auto env = make_log_env(&base, 4096, default_compaction_nice, 8e6);
  auto name = (dir.path / "000007.ldb").string();
  leveldb::WritableFile* raw = nullptr;
  REQUIRE(env->NewWritableFile(name, &raw).ok());
  std::unique_ptr<leveldb::WritableFile> f{raw};
  std::string expected;
  for (int i = 0; expected.size() < (size_t{2} << 20); ++i) {
    auto part = std::string(1000 + i % 7000, char('a' + i % 26));
    REQUIRE(f->Append(part).ok());
    expected += part;
  }
  // Whole pieces are on disk before the sync; the rest after it.
  CHECK(fs::file_size(name) >= expected.size() - table_piece);
  REQUIRE(f->Sync().ok());
  CHECK(contents(name) == expected);
  REQUIRE(f->Close().ok());
  CHECK(contents(name) == expected);
  // Every byte paid for at 8 MB/s (1 µs per 8 bytes; each pause rounds
  // down by under 1 µs), a piece at most per pause (a piece is written
  // once an append fills it: up to one append, < 8,000 bytes, past it).
  auto bytes = static_cast<int64_t>(expected.size());
  auto piece = static_cast<int64_t>(table_piece) + 8000;
  CHECK(base.count >= bytes / piece);
  CHECK(base.total_us <= bytes / 8);
  CHECK(base.total_us > bytes / 8 - base.count);
  CHECK(base.longest_us <= piece / 8);
  // Unpaced: no pauses.
  counted_sleeps base2;
  auto fast = make_log_env(&base2, 4096, default_compaction_nice, 0);
  auto name2 = (dir.path / "000008.ldb").string();
  REQUIRE(fast->NewWritableFile(name2, &raw).ok());
  f.reset(raw);
  REQUIRE(f->Append(expected).ok());
  REQUIRE(f->Close().ok());
  CHECK(base2.count == 0);
  CHECK(contents(name2) == expected);
}

TEST_CASE("log env: a log that cannot be created is an IO error") {
  auto env = make_log_env(leveldb::Env::Default(), 4096);
  leveldb::WritableFile* raw = nullptr;
  auto st = env->NewWritableFile("/nonexistent-parley-dir/000001.log", &raw);
  CHECK(st.IsIOError());
  CHECK(raw == nullptr);
}

TEST_CASE("log env: background jobs run on a thread at the compaction nice") {
  // LevelDB's background thread is one per process, lowered by its first
  // job: every Env here asks for the default.
  auto env = make_log_env(leveldb::Env::Default());
  struct probe {
    std::mutex mtx;
    std::condition_variable cv;
    bool ran = false;
    pid_t tid = 0;
    int nice = 0;
  } p;
  env->Schedule(
    [](void* arg) {
      auto& p = *static_cast<probe*>(arg);
      std::lock_guard<std::mutex> guard{p.mtx};
      p.tid = ::gettid();
      errno = 0;
      p.nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(p.tid));
      p.ran = true;
      p.cv.notify_all();
    },
    &p);
  std::unique_lock<std::mutex> guard{p.mtx};
  REQUIRE(p.cv.wait_for(guard, std::chrono::seconds(10), [&] { return p.ran; }));
  CHECK(p.tid != ::gettid());
  CHECK(p.nice == default_compaction_nice);
  CHECK(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())) == 0);
}

TEST_CASE("leveldb recovers every synced write from a log ending in zeros") {
  scratch_dir dir;
  constexpr sequence n = 500;
  // A child writes synced commits and dies without closing the database,
  // as a killed server would: its log ends in zeros written ahead.
  auto child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto kv = leveldb_backend::open(dir.path.string());
    if (!kv)
      ::_exit(2);
    for (sequence s = 1; s <= n; ++s) {
      write_batch b;
      store::add_message(b, message(s));
      if ((*kv)->write(b, true))
        ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto logs = logs_in(dir.path);
  REQUIRE(logs.size() == 1);
  auto log = contents(logs[0]);
  REQUIRE(log.size() % log_zero_chunk == 0);
  CHECK(log.back() == '\0');
  for (int round = 0; round < 2; ++round) {
    auto kv = leveldb_backend::open(dir.path.string());
    REQUIRE(kv);
    auto snap = store::load_conversation(**kv, 9);
    REQUIRE(snap);
    CHECK(snap->head == n + round);
    auto all = store::fetch_messages(**kv, 9, 0, 2 * n);
    REQUIRE(all);
    REQUIRE(all->size() == n + round);
    for (sequence s = 1; s <= n + round; ++s) {
      CHECK((*all)[s - 1].seq == s);
      CHECK((*all)[s - 1].payload == message(s).payload);
    }
    write_batch b;
    store::add_message(b, message(n + round + 1));
    REQUIRE_FALSE((*kv)->write(b, true));
  }
  // LevelDB saw the zeros as padding, not as a loss.
  auto info = contents(dir.path / "LOG") + contents(dir.path / "LOG.old");
  CHECK(info.find("ropping") == std::string::npos);
  CHECK(info.find("orruption") == std::string::npos);
}
