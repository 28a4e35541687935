// Key layout 2 -> 3: accounts keyed by user id (layout_migration.hpp:
// migrate_v2_to_v3).

#include "runtime/store/layout_migration.hpp"

#include <vector>

#include "runtime/core/errors.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"

namespace parley::store {

namespace {

/// A username entry seen by the scan, and what layout 3 makes of it.
struct entry {
  std::string key;
  account_v3 next;
};

} // namespace

caf::expected<layout_report>
migrate_v2_to_v3(kv_backend& kv, const migration_options& opts) {
  auto say = [&](const std::string& line) {
    if (opts.log)
      opts.log(line);
  };
  layout_report rep;
  rep.found = 2;
  say("layout migration: from layout 2 to 3 (accounts keyed by user id), "
      + std::to_string(opts.chunk_keys) + " accounts per synced batch");
  auto chunk = opts.chunk_keys == 0 ? size_t{1} : opts.chunk_keys;
  uint64_t next_progress = opts.progress_every;
  std::string from = keys::table_start(0, keys::accounts_tag);
  for (;;) {
    std::vector<entry> seen;
    caf::error bad;
    auto err = scan_table(kv, keys::accounts_tag, from,
                          [&](std::string_view k, std::string_view v) {
                            auto next = account_to_v3(v);
                            if (!next) {
                              bad = caf::make_error(
                                errc::storage_corrupt,
                                "layout migration: key " + key_hex(k)
                                  + " (table 'u' (usernames): "
                                  + to_string(next.error())
                                  + "); nothing was dropped, the accounts "
                                    "from this key on are unchanged");
                              return false;
                            }
                            seen.push_back({std::string(k), std::move(*next)});
                            return seen.size() < chunk;
                          });
    if (err)
      return err;
    // The accounts before a bad one still move: a re-run resumes at it.
    write_batch b;
    uint64_t n = 0;
    for (auto& e : seen) {
      if (e.next.slim) {
        // Migrated by an earlier run, unless its record is missing.
        auto rec = kv.get(e.next.record_key);
        if (!rec)
          return std::move(rec.error());
        if (*rec)
          continue;
      }
      b.put(e.next.record_key, e.next.record_value);
      if (!e.next.slim)
        b.put(e.key, e.next.name_value);
      ++n;
    }
    if (n > 0) {
      if (auto werr = kv.write(b, true))
        return werr;
      rep.accounts += n;
      ++rep.chunks;
    }
    if (bad)
      return bad;
    if (seen.size() < chunk)
      break;
    if (opts.progress_every != 0 && rep.accounts >= next_progress) {
      say("layout migration: " + std::to_string(rep.accounts)
          + " accounts keyed by id");
      next_progress = rep.accounts + opts.progress_every;
    }
    from = seen.back().key + '\0';
  }
  say("layout migration: done, " + std::to_string(rep.accounts)
      + " accounts keyed by id in " + std::to_string(rep.chunks) + " batches");
  return rep;
}

} // namespace parley::store
