#include "runtime/store/layout_migration.hpp"

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/keys.hpp"

namespace parley::store {

namespace {

/// Layout 1, the one place it lives on: every key started with its table
/// tag, then the fields as today (keys.hpp), without the 'P' slot prefix.
namespace keys_v1 {

/// Whose slot a table's records take (keys.hpp's owner functions).
enum class owner { conversation, user, username, token, counter };

struct table {
  char tag;
  const char* name;
  owner by;
  size_t size;  ///< the key's size, or its least size if not `exact`
  bool exact;
};

constexpr table tables[] = {
  {'b', "members", owner::conversation, 17, true},
  {'c', "conversations", owner::conversation, 9, true},
  {'e', "sweep marks", owner::conversation, 9, true},
  {'i', "idempotency", owner::conversation, 25, false},
  {'m', "messages", owner::conversation, 17, true},
  {'o', "outbox", owner::conversation, 9, true},
  {'s', "receipts", owner::conversation, 18, true},
  {'d', "devices", owner::user, 17, true},
  {'v', "user names", owner::user, 9, true},
  {'y', "memberships", owner::user, 17, true},
  {'r', "delivered", owner::user, 25, true},
  {'x', "inbox", owner::user, 17, true},
  {'f', "inbox flags", owner::user, 17, true},
  {'u', "accounts", owner::username, 2, false},
  {'t', "tokens", owner::token, 33, true},
  {'n', "counters", owner::counter, 2, false},
};

const table* table_of(char tag) {
  for (auto& t : tables)
    if (t.tag == tag)
      return &t;
  return nullptr;
}

} // namespace keys_v1

caf::error refuse(std::string_view key, const std::string& why) {
  return caf::make_error(errc::storage_corrupt,
                         "layout migration: key " + key_hex(key) + " (" + why
                           + "); nothing was dropped, the store is unchanged "
                             "from this key on");
}

std::string be64(uint64_t x) {
  std::string out;
  keys::append_u64(out, x);
  return out;
}

caf::error write_version(kv_backend& kv) {
  write_batch b;
  b.put(keys::meta("layout"), be64(keys::layout_version));
  return kv.write(b, true);
}

/// The least key after every meta key.
std::string after_meta() {
  return std::string(1, static_cast<char>(keys::meta_tag + 1));
}

/// True if `kv` holds any key but meta keys.
caf::expected<bool> has_data(kv_backend& kv) {
  bool any = false;
  auto seen = [&](std::string_view, std::string_view) {
    any = true;
    return false;
  };
  if (auto err = kv.scan("", std::string(1, keys::meta_tag), seen))
    return err;
  if (!any)
    if (auto err = kv.scan(after_meta(), "", seen))
      return err;
  return any;
}

} // namespace

std::string key_hex(std::string_view key) {
  std::string out;
  char buf[3];
  for (size_t i = 0; i < key.size() && i < 40; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<uint8_t>(key[i]));
    out += buf;
  }
  if (key.size() > 40)
    out += "...";
  return out;
}

caf::expected<std::string> v2_key_of_v1(std::string_view old_key) {
  using keys_v1::owner;
  if (old_key.empty())
    return refuse(old_key, "empty key");
  auto t = keys_v1::table_of(old_key[0]);
  if (!t)
    return refuse(old_key, "no layout-1 table has tag '"
                             + std::string(1, old_key[0]) + "'");
  if (old_key.size() < t->size || (t->exact && old_key.size() != t->size))
    return refuse(old_key, "table '" + std::string(1, t->tag) + "' ("
                             + t->name + ") keys are "
                             + (t->exact ? "" : "at least ")
                             + std::to_string(t->size) + " bytes, this one is "
                             + std::to_string(old_key.size()));
  auto rest = old_key.substr(1);
  uint16_t slot = 0;
  switch (t->by) {
    case owner::conversation:
      slot = keys::conversation_slot(*keys::read_u64(old_key, 1));
      break;
    case owner::user:
      slot = keys::user_slot(*keys::read_u64(old_key, 1));
      break;
    case owner::username:
      slot = keys::account_slot(rest);
      break;
    case owner::token:
      slot = keys::token_slot(rest);
      break;
    case owner::counter:
      slot = keys::counter_slot(rest);
      break;
  }
  auto out = keys::table_start(slot, t->tag);
  out.append(rest);
  return out;
}

caf::expected<std::optional<uint64_t>> stored_layout(kv_backend& kv) {
  auto rec = kv.get(keys::meta("layout"));
  if (!rec)
    return std::move(rec.error());
  if (!*rec)
    return std::optional<uint64_t>{};
  auto v = keys::read_u64(**rec, 0);
  if (!v || (*rec)->size() != 8 || *v == 0)
    return caf::make_error(errc::storage_corrupt,
                           "bad layout version record in the store");
  return std::optional<uint64_t>{*v};
}

caf::expected<layout_report>
migrate_v1_to_v2(kv_backend& kv, const migration_options& opts) {
  auto say = [&](const std::string& line) {
    if (opts.log)
      opts.log(line);
  };
  layout_report rep;
  rep.found = 1;
  say("layout migration: from layout 1 to 2 (keys gain their owner's slot), "
      + std::to_string(opts.chunk_keys) + " keys per synced batch");
  // Layout-1 keys are everything outside the 'P' range and the meta table.
  const std::string ranges[][2] = {
    {"", std::string(1, keys::partitioned_tag)},
    {keys::table_start(slot_count, 0), std::string(1, keys::meta_tag)},
    {after_meta(), ""}};
  auto chunk = opts.chunk_keys == 0 ? size_t{1} : opts.chunk_keys;
  uint64_t next_progress = opts.progress_every;
  for (auto& range : ranges) {
    std::string from = range[0];
    for (;;) {
      write_batch b;
      caf::error bad;
      std::string last;
      size_t n = 0;
      auto err = kv.scan(from, range[1], [&](std::string_view k,
                                              std::string_view v) {
        auto nk = v2_key_of_v1(k);
        if (!nk) {
          bad = std::move(nk.error());
          return false;
        }
        b.put(std::move(*nk), std::string(v));
        b.erase(std::string(k));
        last.assign(k.data(), k.size());
        return ++n < chunk;
      });
      if (err)
        return err;
      // The keys before a bad one still move: a re-run resumes at it.
      if (n > 0) {
        if (auto werr = kv.write(b, true))
          return werr;
        rep.moved += n;
        ++rep.chunks;
      }
      if (bad)
        return bad;
      if (n < chunk)
        break;
      if (opts.progress_every != 0 && rep.moved >= next_progress) {
        say("layout migration: " + std::to_string(rep.moved)
            + " keys moved");
        next_progress = rep.moved + opts.progress_every;
      }
      from = last + '\0';
    }
  }
  say("layout migration: done, " + std::to_string(rep.moved) + " keys moved in "
      + std::to_string(rep.chunks) + " batches");
  return rep;
}

caf::expected<layout_report> settle_layout(kv_backend& kv,
                                           const migration_options& opts) {
  auto kept = stored_layout(kv);
  if (!kept)
    return std::move(kept.error());
  if (*kept && **kept == keys::layout_version)
    return layout_report{**kept, 0, 0};
  if (*kept && **kept > keys::layout_version)
    return caf::make_error(
      errc::conflict,
      "the store's key layout is version " + std::to_string(**kept)
        + "; this binary supports layouts up to "
        + std::to_string(keys::layout_version)
        + " (a newer parley wrote it: run that one)");
  if (!*kept) {
    auto any = has_data(kv);
    if (!any)
      return std::move(any.error());
    if (!*any) {
      if (auto err = write_version(kv))
        return err;
      return layout_report{};
    }
  }
  layout_report rep;
  if (!*kept || **kept == 1) {
    auto v2 = migrate_v1_to_v2(kv, opts);
    if (!v2)
      return v2;
    rep = *v2;
  } else {
    rep.found = **kept;
  }
  auto v3 = migrate_v2_to_v3(kv, opts);
  if (!v3)
    return v3;
  rep.accounts = v3->accounts;
  rep.chunks += v3->chunks;
  if (auto err = write_version(kv))
    return err;
  return rep;
}

} // namespace parley::store
