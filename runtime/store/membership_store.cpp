#include "runtime/store/membership_store.hpp"

#include <algorithm>

#include "parley/v1/store.pb.h"
#include "runtime/core/errors.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;

std::string record_bytes(int32_t role, sequence joined, sequence left) {
  pb::MemberRecord rec;
  rec.set_role(static_cast<pb::MemberRecord::Role>(role));
  rec.set_joined_at_sequence(joined);
  rec.set_left_at_sequence(left);
  return rec.SerializeAsString();
}

std::string record_bytes(const membership_event& ev) {
  return record_bytes(ev.role, ev.joined_at_sequence, ev.left_at_sequence);
}

} // namespace

membership_event member_event_of(conversation_id conv, const member& m,
                                 uint64_t version) {
  return membership_event{conv,   m.user, version, m.role,
                          m.joined_at_sequence, m.left_at_sequence};
}

void add_member_record(write_batch& batch, conversation_id conv,
                       const member& m) {
  batch.put(keys::member(conv, m.user),
            record_bytes(m.role, m.joined_at_sequence, m.left_at_sequence));
}

void add_member_event(write_batch& batch, const membership_event& ev) {
  batch.put(keys::member_event(ev.conv, ev.user, ev.version),
            record_bytes(ev));
}

void erase_member_event(write_batch& batch, const membership_event& ev) {
  batch.erase(keys::member_event(ev.conv, ev.user, ev.version));
}

void add_member_projection(write_batch& batch, const membership_event& ev) {
  batch.put_if_newer(keys::membership(ev.user, ev.conv), record_bytes(ev),
                     keys::member_version(ev.user, ev.conv), ev.version);
}

caf::expected<std::vector<membership_event>>
member_events(kv_backend& kv, conversation_id conv) {
  std::vector<membership_event> out;
  caf::error err;
  auto from = keys::conversation_records(keys::member_events_tag, conv);
  auto to = keys::prefix_end(from);
  auto scan_err = kv.scan(from, to, [&](std::string_view k,
                                        std::string_view v) {
    auto ids = keys::decode_member_event(k);
    pb::MemberRecord rec;
    if (!ids || !rec.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      err = caf::make_error(errc::storage_corrupt, "bad member event record");
      return false;
    }
    out.push_back(membership_event{conv, ids->first, ids->second,
                                   static_cast<int32_t>(rec.role()),
                                   rec.joined_at_sequence(),
                                   rec.left_at_sequence()});
    return true;
  });
  if (scan_err)
    return scan_err;
  if (err)
    return err;
  return out;
}

caf::expected<std::vector<conversation_id>>
conversations_owing_member_events(kv_backend& kv) {
  std::vector<conversation_id> out;
  auto err = scan_table(kv, keys::member_events_tag,
                        [&](std::string_view k, std::string_view) {
                          // 'P' slot 'g' conv user version
                          auto conv = keys::read_u64(k, keys::fields_pos);
                          if (conv && (out.empty() || out.back() != *conv))
                            out.push_back(*conv);
                          return true;
                        });
  if (err)
    return err;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

caf::expected<uint64_t> member_version(kv_backend& kv, user_id user,
                                       conversation_id conv) {
  auto bytes = kv.get(keys::member_version(user, conv));
  if (!bytes)
    return bytes.error();
  if (!*bytes)
    return uint64_t{0};
  auto v = keys::read_u64(**bytes, 0);
  if (!v)
    return caf::make_error(errc::storage_corrupt, "bad member version");
  return *v;
}

} // namespace parley::store
