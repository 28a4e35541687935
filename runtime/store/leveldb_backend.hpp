#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "runtime/store/kv_backend.hpp"
#include "runtime/store/log_env.hpp"

namespace leveldb {
class Cache;
class DB;
class Env;
class FilterPolicy;
class Status;
} // namespace leveldb

namespace parley {

/// Maps a LevelDB status to Parley's error codes (the one place that does).
caf::error to_error(const leveldb::Status& st);

/// Bytes of writes LevelDB gathers in memory (and in its log) before it
/// writes them out as a level-0 table. LevelDB's own default is 4 MiB; at
/// 8 MiB a node taking 15,000 messages a second flushed every 1.5 s and
/// compacted every 6 s, and the tables' writes slowed the synced writes of
/// every commit behind them. At 64 MiB the same minute of load wrote a
/// fifth of the table bytes (51 against 239 MB) and p99 fell by a third to
/// a half (tools/bench/RESULTS.md, issue 3). Up to two such buffers are in
/// memory at once, and a restart after a crash replays up to one.
inline constexpr size_t default_write_buffer = size_t{64} << 20;

/// How the node's LevelDB runs (config: parley.compaction-nice,
/// write-buffer-mb, table-write-mb-s).
struct leveldb_options {
  /// CPU priority of LevelDB's flushes and compactions (0-19; log_env.hpp).
  int compaction_nice = default_compaction_nice;
  size_t write_buffer = default_write_buffer; ///< bytes; see above
  /// Pace of table writes (0: unpaced; log_env.hpp).
  double table_bytes_per_s = default_table_write_rate;
};

/// kv_backend on a LevelDB database in a directory of its own.
class leveldb_backend : public kv_backend {
public:
  /// Opens (creating if missing) the database at `dir`.
  static caf::expected<std::shared_ptr<leveldb_backend>>
  open(const std::string& dir, const leveldb_options& opts = {});

  ~leveldb_backend() override;

  caf::error write(const write_batch& batch, bool sync) override;

  caf::expected<std::optional<std::string>> get(std::string_view key) override;

  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override;

  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override;

  /// LevelDB's property `name` (DB::GetProperty: "leveldb.stats",
  /// "leveldb.num-files-at-level0", ...), or "parley.disk-bytes": the bytes
  /// of the files in the database's directory. Empty if unknown.
  std::string property(const std::string& name) override;

private:
  leveldb_backend() = default;

  std::string dir_;

  // Declared before db_: the database must close before these go.
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<leveldb::Env> env_;
  std::unique_ptr<leveldb::DB> db_;
};

} // namespace parley
