#pragma once

// A seed's data for the sync and inbox-read sims (user_sync_test.cpp,
// inbox_reads_test.cpp), written straight to a memory store.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/store/account_store.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/sync_paging.hpp"
#include "key_audit.hpp"

namespace parley::sim {

/// A seed's data: users, conversations with member windows, gapless logs,
/// receipt cursors, accounts' read settings, and inbox rows that are
/// right, stale or missing.
struct sync_data {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  std::vector<user_id> users;
  std::vector<user_id> syncing;
  std::map<conversation_id, std::vector<member>> convs;
  std::map<conversation_id, sequence> heads;
  /// What was written, for a model of a sync (sync_oracle.hpp): each
  /// conversation's log and receipt cursors, the users with read receipts
  /// off, each (user, conversation)'s inbox row and flags if written.
  std::map<conversation_id, std::vector<stored_message>> log;
  std::map<conversation_id, std::vector<receipt_cursor>> receipts;
  std::set<user_id> reads_off;
  std::map<std::pair<user_id, conversation_id>, inbox_entry> stored_rows;
  std::map<std::pair<user_id, conversation_id>, inbox_entry> flags;

  explicit sync_data(std::mt19937_64& rng) {
    auto pick = [&](uint64_t n) { return rng() % n; };
    for (user_id u = 7; u < 7 + 8; ++u)
      users.push_back(u);
    syncing = {7, 8, 9};
    write_batch b;
    for (auto u : users) {
      store::account a;
      a.name = name_of(u);
      a.user = u;
      a.read_receipts_off = pick(4) == 0;
      if (a.read_receipts_off)
        reads_off.insert(u);
      store::update_account(b, a);
      b.put(keys::user_name(u), a.name);
    }
    auto nconv = 4 + pick(14);
    for (size_t i = 0; i < nconv; ++i) {
      bool direct = pick(2) == 0;
      conversation_id c = (direct ? (uint64_t{1} << 63) : 0) + 100 + i * 7
                          + pick(5);
      std::vector<user_id> who;
      // The syncing users are in most conversations.
      for (auto u : users)
        if ((u < 10 && pick(4) != 0) || pick(5) == 0)
          who.push_back(u);
      if (direct && who.size() > 2)
        who.resize(2);
      if (who.empty())
        who.push_back(7);
      sequence n = pick(5) == 0 ? 0 : 1 + pick(40);
      heads[c] = n;
      store::add_conversation(b, c, direct ? 1 : 2, 1000);
      for (auto u : who) {
        member m{u, role_member, 1, 0};
        if (n > 2 && pick(3) == 0)
          m.joined_at_sequence = 1 + pick(n);
        if (n > 2 && pick(4) == 0)
          m.left_at_sequence = m.joined_at_sequence + 1 + pick(n);
        store::add_member(b, c, m);
        convs[c].push_back(m);
      }
      for (sequence s = 1; s <= n; ++s) {
        stored_message m;
        m.conversation = c;
        m.seq = s;
        m.sender_user = who[pick(who.size())];
        m.sender_device = 1;
        m.client_message_id = "c" + std::to_string(c) + "-" + std::to_string(s);
        m.sent_at_ms = 1000 + int64_t(pick(5000));
        m.kind = 1;
        m.payload.assign(pick(4) == 0 ? pick(6000) : pick(200), 'p');
        store::add_message(b, m);
        log[c].push_back(m);
      }
      for (auto u : who)
        for (int32_t kind : {1, 2})
          if (n > 0 && pick(2) == 0) {
            receipt_cursor rc{u, kind, 1 + pick(n)};
            store::add_receipt(b, c, rc);
            receipts[c].push_back(rc);
          }
    }
    REQUIRE_FALSE(disk->write(b, true));
    // Inbox rows: right, stale or missing; flags on some.
    write_batch rows;
    for (auto& [c, ms] : convs)
      for (auto& m : ms) {
        auto e = store::compute_inbox_entry(*disk, m.user, c);
        REQUIRE(e);
        switch (pick(4)) {
          case 0:
            break; // missing
          case 1:
            e->unread += 1 + pick(3); // stale
            [[fallthrough]];
          default:
            store::add_inbox_entry(rows, m.user, *e);
            stored_rows[{m.user, c}] = *e;
        }
        if (pick(3) == 0) {
          inbox_entry f;
          f.archived = pick(2);
          f.pinned = pick(2);
          f.muted = pick(2);
          store::add_inbox_flags(rows, m.user, c, f.archived, f.pinned,
                                 f.muted);
          flags[{m.user, c}] = f;
        }
      }
    REQUIRE_FALSE(disk->write(rows, true));
  }

  /// A first request of `user`: cursors on some of its conversations (now
  /// and then one past the head, or one of a conversation it is not in),
  /// page size and frame limit small enough to split.
  sync_request request(user_id user, std::mt19937_64& rng) const {
    auto pick = [&](uint64_t n) { return rng() % n; };
    sync_request r;
    for (auto& [c, ms] : convs) {
      bool in = std::any_of(ms.begin(), ms.end(),
                            [&](const member& m) { return m.user == user; });
      if ((in && pick(2) == 0) || pick(60) == 0) {
        r.cursor_conversations.push_back(c);
        auto h = heads.at(c);
        r.cursor_sequences.push_back(pick(50) == 0 ? h + 1 : pick(h + 1));
      }
    }
    r.page_size = pick(3) == 0 ? 0 : 1 + pick(25);
    r.cursors_only = pick(5) == 0;
    r.read_receipts = pick(4) != 0;
    r.max_frame_bytes = static_cast<uint32_t>(
      store::min_server_frame_bytes(6000) + pick(3) * 8000);
    return r;
  }
};

} // namespace parley::sim
