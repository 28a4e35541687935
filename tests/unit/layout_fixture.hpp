#pragma once

// A store populated through the store's own writers (layout 2) with every
// table: conversations 1-6 with members, messages, idempotency, receipts,
// watermarks and sweep marks; users 10-13 with memberships, inbox entries
// and flags, devices, delivered cursors; accounts, names, tokens and the
// user counter. And its layout-1 twin (the same records, keys without the
// 'P' slot prefix), for the migration's tests. The accounts are written as
// layout 2 kept them (the whole record under 'u' username); as_layout_3
// says what the 2 -> 3 step makes of a store's dump.

#include <map>
#include <string>

#include "parley/v1/store.pb.h"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"

namespace parley::test {

using kv_map = std::map<std::string, std::string>;

/// Every key and value of `kv`.
inline kv_map dump(kv_backend& kv) {
  kv_map out;
  auto err = kv.scan("", "", [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  (void) err;
  return out;
}

/// A token hash of user `u`'s device `d` (32 bytes).
inline std::string token_hash_of(user_id u, device_id d) {
  return std::string(31, static_cast<char>('a' + u % 16))
         + static_cast<char>(d);
}

/// The records (see above), written through the store's writers.
inline write_batch populated() {
  namespace pb = parley::store::v1;
  write_batch b;
  for (conversation_id c = 1; c <= 6; ++c) {
    store::add_conversation(b, c, c % 2 ? 1 : 2, 1000 + c,
                            c % 2 ? "" : "group " + std::to_string(c));
    user_id a = 10 + c % 4;
    user_id z = 10 + (c + 1) % 4;
    for (user_id u : {a, z}) {
      member m{u, 1, 1, 0};
      store::add_member(b, c, m);
    }
    for (sequence s = 1; s <= c + 2; ++s) {
      stored_message msg;
      msg.conversation = c;
      msg.seq = s;
      msg.sender_user = s % 2 ? a : z;
      msg.sender_device = 1;
      msg.client_message_id = "cm-" + std::to_string(c) + "-"
                              + std::to_string(s);
      msg.sent_at_ms = 5000 + s;
      msg.kind = 1;
      msg.payload = "hello " + std::to_string(s) + " in " + std::to_string(c);
      store::add_message(b, msg, 77);
    }
    store::add_receipt(b, c, receipt_cursor{a, keys::receipt_read, 2});
    store::add_receipt(b, c, receipt_cursor{z, keys::receipt_delivered, 1});
    store::add_watermark(b, c, c);
    store::add_sweep_mark(b, c, 1);
    for (user_id u : {a, z}) {
      inbox_entry e;
      e.conversation = c;
      e.head = c + 2;
      e.read = u == a ? 2 : 0;
      e.latest_sender = a;
      store::add_inbox_entry(b, u, e);
      store::add_inbox_flags(b, u, c, false, c == 2, false);
      std::string seq;
      keys::append_u64(seq, 1);
      b.put(keys::delivered(u, 1, c), seq);
    }
  }
  // Accounts (the account writers are in flux: records as they are on
  // disk, under today's builders).
  for (user_id u = 10; u <= 13; ++u) {
    auto name = "user" + std::to_string(u);
    pb::AccountRecord acct;
    acct.set_user_id(u);
    acct.set_password_hash("$argon2id$" + name);
    acct.set_created_at_ms(100 + u);
    b.put(keys::account(name), acct.SerializeAsString());
    b.put(keys::user_name(u), name);
    for (device_id d = 1; d <= 2; ++d) {
      pb::DeviceRecord dev;
      dev.set_name("phone " + std::to_string(d));
      dev.set_token_hash(token_hash_of(u, d));
      dev.set_created_at_ms(200 + d);
      b.put(keys::device(u, d), dev.SerializeAsString());
      pb::TokenRecord tok;
      tok.set_user_id(u);
      tok.set_device_id(d);
      b.put(keys::token(token_hash_of(u, d)), tok.SerializeAsString());
    }
  }
  pb::Counter counter;
  counter.set_value(13);
  b.put(keys::counter("user"), counter.SerializeAsString());
  return b;
}

/// What key layout 3 holds for the dump `v2` of a layout-2 store: every
/// username entry 'u' slimmed to its user id, its whole record under 'a'
/// user (the id's slot); everything else as it is.
inline kv_map as_layout_3(const kv_map& v2) {
  namespace pb = parley::store::v1;
  kv_map out = v2;
  for (auto& [k, v] : v2) {
    if (keys::table_of(k) != keys::accounts_tag)
      continue;
    pb::AccountRecord rec;
    if (!rec.ParseFromString(v))
      continue; // left as it is: the migration stops at it
    out[keys::user_account(rec.user_id())] = v;
    pb::AccountRecord slim;
    slim.set_user_id(rec.user_id());
    out[k] = slim.SerializeAsString();
  }
  return out;
}

/// The layout-1 twin of a layout-2 store: every key without its 'P' slot
/// prefix (layout 1 had the same bytes from the tag on); meta keys as they
/// are.
inline void write_layout_1(kv_backend& from, kv_backend& to) {
  write_batch b;
  for (auto& [k, v] : dump(from))
    b.put(keys::slot_of_key(k) ? k.substr(keys::tag_pos) : k, v);
  auto err = to.write(b, true);
  (void) err;
}

} // namespace parley::test
