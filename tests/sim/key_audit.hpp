#pragma once

// Test helpers of user_sync_test.cpp: a kv_backend that records the keys
// read through it, who owns a key (by the key builders' own prefixes), and
// a store reader whose sync reads are answered on a recording backend and
// audited: every key a request reads must be a record of an id the
// request asked for, placed in the partition the request names.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "actors/store_reader.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/kv_backend.hpp"
#include "runtime/store/sync_reads.hpp"

namespace parley::sim {

/// A kv_backend that records the keys read through it: each key got, the
/// first key of each scan or last and every key a scan visits or a last
/// returns.
class recording_kv : public kv_backend {
public:
  explicit recording_kv(kv_backend& kv) : kv_(kv) {
  }

  std::vector<std::string> keys;

  caf::error write(const write_batch& batch, bool sync) override {
    return kv_.write(batch, sync);
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    keys.emplace_back(key);
    return kv_.get(key);
  }

  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    keys.emplace_back(from);
    return kv_.scan(from, to, [&](std::string_view k, std::string_view v) {
      keys.emplace_back(k);
      return f(k, v);
    });
  }

  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    keys.emplace_back(from);
    auto r = kv_.last(from, to);
    if (r && *r)
      keys.push_back((*r)->first);
    return r;
  }

private:
  kv_backend& kv_;
};

inline std::string name_of(user_id u) {
  return "user" + std::to_string(u);
}

/// Whose record a key is, found by the key builders' own prefixes (so it
/// holds for any layout that ends keys with their fields).
struct owners {
  std::map<std::string, placement_key> prefixes;

  static std::string cut(std::string key, size_t n) {
    key.resize(key.size() - n);
    return key;
  }

  void add_conversation(conversation_id c) {
    auto k = placement_key::conversation(c);
    prefixes[cut(keys::message(c, 0), 8)] = k;
    prefixes[cut(keys::receipt(c, 0, 0), 9)] = k;
    prefixes[cut(keys::member(c, 0), 8)] = k;
    prefixes[keys::conversation(c)] = k;
  }

  void add_user(user_id u) {
    auto k = placement_key::user(u);
    prefixes[cut(keys::membership(u, 0), 8)] = k;
    prefixes[cut(keys::inbox(u, 0), 8)] = k;
    prefixes[cut(keys::inbox_flags(u, 0), 8)] = k;
    prefixes[keys::user_name(u)] = k;
    // The user's account record ('a', key layout 3): the user's setting.
    prefixes[keys::user_account(u)] = k;
  }

  std::optional<placement_key> of(const std::string& key) const {
    // The longest prefix of `key` among the owners'.
    auto i = prefixes.upper_bound(key);
    while (i != prefixes.begin()) {
      --i;
      if (key.compare(0, i->first.size(), i->first) == 0)
        return i->second;
      if (i->first.empty() || i->first[0] != key[0])
        break;
    }
    return std::nullopt;
  }
};

/// Problems found by the recording reader (empty: none).
struct key_audit {
  owners who;
  uint32_t partitions = 1;
  std::vector<std::string> problems;
  uint64_t conv_requests = 0;
  uint64_t user_requests = 0;
  bool drop_conv_reads = false; ///< never answer them (a lost partition)

  void check(const recording_kv& rec, uint32_t partition,
             const std::set<std::pair<uint8_t, uint64_t>>& allowed,
             const char* what) {
    for (auto& k : rec.keys) {
      auto o = who.of(k);
      std::ostringstream os;
      if (!o) {
        os << what << " read a key of no known owner (" << k.size()
           << " bytes)";
      } else if (!allowed.count({o->kind, o->id})) {
        os << what << " read a record of id " << o->id << " (kind "
           << int(o->kind) << "), which it did not ask for";
      } else if (partition_of(*o, partitions) != partition) {
        os << what << " of partition " << partition << " read id " << o->id
           << " of partition " << partition_of(*o, partitions);
      } else {
        continue;
      }
      problems.push_back(os.str());
    }
  }
};

/// The store reader with its sync reads answered on a recording backend
/// and audited; everything else is handed to the real reader.
inline store_reader_actor::behavior_type
audited_reader(store_reader_actor::pointer self, store_reader_actor real,
               std::shared_ptr<kv_backend> kv,
               std::shared_ptr<key_audit> audit) {
  return {
    [=](lookup_atom a, conversation_id c, user_id u, device_id d,
        std::string& cmid) -> caf::result<idempotency_hit> {
      return self->delegate(real, a, c, u, d, std::move(cmid));
    },
    [=](fetch_atom a, conversation_id c, sequence after, uint64_t n)
      -> caf::result<std::vector<stored_message>> {
      return self->delegate(real, a, c, after, n);
    },
    [=](outbox_atom a) -> caf::result<std::vector<uint64_t>> {
      return self->delegate(real, a);
    },
    [=](outbox_atom a, uint32_t p, uint32_t n)
      -> caf::result<std::vector<uint64_t>> {
      return self->delegate(real, a, p, n);
    },
    [=](sweep_atom a, conversation_id c, sequence after, int64_t cutoff,
        uint64_t n) -> caf::result<idempotency_sweep> {
      return self->delegate(real, a, c, after, cutoff, n);
    },
    [=](ack_atom a, user_id u, conversation_id c) -> caf::result<sequence> {
      return self->delegate(real, a, u, c);
    },
    [=](fetch_atom, conv_reads& r) -> caf::result<conv_answers> {
      if (audit->drop_conv_reads)
        return self->make_response_promise<conv_answers>(); // never answered
      recording_kv rec{*kv};
      auto out = store::answer_conv_reads(rec, r, 50);
      std::set<std::pair<uint8_t, uint64_t>> asked;
      for (auto& q : r.queries)
        asked.emplace(id_kind_conversation, q.conv);
      audit->check(rec, r.partition, asked, "a conversation read");
      ++audit->conv_requests;
      if (!out)
        return std::move(out.error());
      return std::move(*out);
    },
    [=](fetch_atom, user_reads& r) -> caf::result<user_answers> {
      recording_kv rec{*kv};
      auto out = store::answer_user_reads(rec, r);
      std::set<std::pair<uint8_t, uint64_t>> asked;
      if (r.kind == user_read_sharing)
        for (auto u : r.users)
          asked.emplace(id_kind_user, u);
      else
        asked.emplace(id_kind_user, r.user);
      audit->check(rec, r.partition, asked,
                   r.kind == user_read_sharing ? "a settings read"
                                               : "a user's own read");
      ++audit->user_requests;
      if (!out)
        return std::move(out.error());
      return std::move(*out);
    },
  };
}

} // namespace parley::sim
