#include "runtime/store/leveldb_backend.hpp"

#include <filesystem>

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include "runtime/core/errors.hpp"
#include "runtime/store/log_env.hpp"

namespace parley {

kv_backend::~kv_backend() = default;

caf::error to_error(const leveldb::Status& st) {
  if (st.ok())
    return caf::none;
  if (st.IsCorruption())
    return caf::make_error(errc::storage_corrupt, st.ToString());
  if (st.IsNotFound())
    return caf::make_error(errc::not_found, st.ToString());
  return caf::make_error(errc::storage_failed, st.ToString());
}

caf::expected<std::shared_ptr<leveldb_backend>>
leveldb_backend::open(const std::string& dir, const leveldb_options& lo) {
  std::shared_ptr<leveldb_backend> self{new leveldb_backend};
  self->dir_ = dir;
  // Bloom filters make idempotency misses (every new send) cheap.
  self->filter_.reset(leveldb::NewBloomFilterPolicy(10));
  self->cache_.reset(leveldb::NewLRUCache(64 << 20));
  self->env_ = make_log_env(leveldb::Env::Default(), log_zero_chunk,
                            lo.compaction_nice, lo.table_bytes_per_s);
  leveldb::Options opts;
  opts.create_if_missing = true;
  opts.write_buffer_size = lo.write_buffer;
  opts.filter_policy = self->filter_.get();
  opts.block_cache = self->cache_.get();
  opts.env = self->env_.get();
  leveldb::DB* db = nullptr;
  auto st = leveldb::DB::Open(opts, dir, &db);
  if (!st.ok())
    return to_error(st);
  self->db_.reset(db);
  return self;
}

leveldb_backend::~leveldb_backend() = default;

std::string leveldb_backend::property(const std::string& name) {
  if (name == "parley.disk-bytes") {
    std::error_code ec;
    uint64_t total = 0;
    for (auto& e : std::filesystem::directory_iterator(dir_, ec)) {
      std::error_code fec;
      if (e.is_regular_file(fec))
        if (auto n = e.file_size(fec); !fec)
          total += n;
    }
    return ec ? std::string{} : std::to_string(total);
  }
  std::string out;
  return db_->GetProperty(name, &out) ? out : std::string{};
}

caf::error leveldb_backend::write(const write_batch& batch, bool sync) {
  leveldb::WriteBatch wb;
  for (auto& op : batch.ops) {
    if (op.erase)
      wb.Delete(op.key);
    else
      wb.Put(op.key, op.value);
  }
  leveldb::WriteOptions wo;
  wo.sync = sync;
  return to_error(db_->Write(wo, &wb));
}

caf::expected<std::optional<std::string>>
leveldb_backend::get(std::string_view key) {
  std::string value;
  auto st = db_->Get(leveldb::ReadOptions{},
                     leveldb::Slice{key.data(), key.size()}, &value);
  if (st.IsNotFound())
    return std::optional<std::string>{};
  if (!st.ok())
    return to_error(st);
  return std::optional<std::string>{std::move(value)};
}

caf::error leveldb_backend::scan(std::string_view from, std::string_view to,
                                 const visitor& f) {
  std::unique_ptr<leveldb::Iterator> it{db_->NewIterator({})};
  for (it->Seek({from.data(), from.size()}); it->Valid(); it->Next()) {
    auto k = it->key();
    std::string_view key{k.data(), k.size()};
    if (!to.empty() && key >= to)
      break;
    auto v = it->value();
    if (!f(key, std::string_view{v.data(), v.size()}))
      break;
  }
  return to_error(it->status());
}

caf::expected<std::optional<std::pair<std::string, std::string>>>
leveldb_backend::last(std::string_view from, std::string_view to) {
  using result = std::optional<std::pair<std::string, std::string>>;
  std::unique_ptr<leveldb::Iterator> it{db_->NewIterator({})};
  if (to.empty())
    it->SeekToLast();
  else {
    it->Seek({to.data(), to.size()});
    if (it->Valid())
      it->Prev();
    else
      it->SeekToLast();
  }
  if (auto err = to_error(it->status()))
    return err;
  if (!it->Valid() || it->key().compare({from.data(), from.size()}) < 0)
    return result{};
  return result{std::make_pair(it->key().ToString(), it->value().ToString())};
}

} // namespace parley
