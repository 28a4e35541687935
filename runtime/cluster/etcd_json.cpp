#include "runtime/cluster/etcd_json.hpp"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <cstdlib>

namespace parley::cluster::etcd_json {

namespace pb = google::protobuf;

namespace {

cp_error bad(std::string what) {
  return {cp_errc::bad_answer, std::move(what)};
}

// Parses `text` as one JSON value (protobuf's parser: bounded depth, no
// exceptions). Refuses oversized text unread.
std::optional<pb::Value> parse_value(std::string_view text, std::string& why) {
  if (text.size() > max_answer_bytes) {
    why = "answer of " + std::to_string(text.size()) + " bytes is too large";
    return std::nullopt;
  }
  pb::Value v;
  auto st = pb::util::JsonStringToMessage(
    pb::StringPiece(text.data(), text.size()), &v);
  if (!st.ok()) {
    why = "malformed JSON: " + std::string(st.message());
    return std::nullopt;
  }
  return v;
}

const pb::Value* field(const pb::Value& obj, const char* name) {
  if (!obj.has_struct_value())
    return nullptr;
  auto& f = obj.struct_value().fields();
  auto i = f.find(name);
  return i == f.end() ? nullptr : &i->second;
}

// etcd sends int64 as strings; accept integral numbers too. Absent = 0
// (proto3 JSON omits defaults). False if present but not an integer.
bool get_int(const pb::Value& obj, const char* name, int64_t& out) {
  out = 0;
  auto* v = field(obj, name);
  if (v == nullptr)
    return true;
  if (v->has_string_value()) {
    auto& s = v->string_value();
    if (s.empty() || s.size() > 20)
      return false;
    char* end = nullptr;
    errno = 0;
    auto n = std::strtoll(s.c_str(), &end, 10);
    if (errno != 0 || end != s.c_str() + s.size())
      return false;
    out = n;
    return true;
  }
  if (v->kind_case() == pb::Value::kNumberValue) {
    auto d = v->number_value();
    if (std::trunc(d) != d || std::fabs(d) > 9007199254740992.0)
      return false;
    out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

bool get_bool(const pb::Value& obj, const char* name, bool& out) {
  out = false;
  auto* v = field(obj, name);
  if (v == nullptr)
    return true;
  if (v->kind_case() != pb::Value::kBoolValue)
    return false;
  out = v->bool_value();
  return true;
}

// A base64 field; absent = "".
bool get_b64(const pb::Value& obj, const char* name, std::string& out) {
  out.clear();
  auto* v = field(obj, name);
  if (v == nullptr)
    return true;
  if (!v->has_string_value())
    return false;
  auto d = b64_decode(v->string_value());
  if (!d)
    return false;
  out = std::move(*d);
  return true;
}

// header.revision; the header must be there.
bool get_revision(const pb::Value& obj, int64_t& out) {
  auto* h = field(obj, "header");
  return h != nullptr && h->has_struct_value()
         && get_int(*h, "revision", out) && out > 0;
}

bool get_kv(const pb::Value& v, kv_entry& kv) {
  return v.has_struct_value() && get_b64(v, "key", kv.key)
         && get_b64(v, "value", kv.value)
         && get_int(v, "create_revision", kv.create_revision)
         && get_int(v, "mod_revision", kv.mod_revision)
         && get_int(v, "lease", kv.lease) && !kv.key.empty();
}

// An object's array field; absent = empty. Null if present but no array.
const pb::ListValue* get_list(const pb::Value& obj, const char* name,
                              bool& ok) {
  static const pb::ListValue empty;
  auto* v = field(obj, name);
  ok = v == nullptr || v->has_list_value();
  return v == nullptr ? &empty : ok ? &v->list_value() : nullptr;
}

cp_result<range_result> range_of(const pb::Value& obj) {
  range_result r;
  bool ok = false;
  auto* kvs = get_list(obj, "kvs", ok);
  if (!ok || !get_revision(obj, r.revision))
    return bad("range answer without header.revision or kvs array");
  for (auto& v : kvs->values()) {
    kv_entry kv;
    if (!get_kv(v, kv))
      return bad("malformed key-value in range answer");
    r.kvs.push_back(std::move(kv));
  }
  return r;
}

// Reads `body`, then `fn(value)`; an object with "error" is a server error.
template <class T, class F>
cp_result<T> with_object(std::string_view body, F fn) {
  std::string why;
  auto v = parse_value(body, why);
  if (!v)
    return bad(why);
  if (!v->has_struct_value())
    return bad("answer is not a JSON object");
  if (field(*v, "error") != nullptr)
    return error_of(200, body);
  return fn(*v);
}

std::string quote(const std::string& s) {
  return '"' + s + '"';
}

std::string b64q(const std::string& s) {
  return quote(b64_encode(s));
}

std::string range_fields(const std::string& prefix) {
  return "\"key\":" + b64q(prefix.empty() ? std::string(1, '\0') : prefix)
         + ",\"range_end\":" + b64q(prefix_range_end(prefix));
}

std::string op_json(const txn_op& op) {
  switch (op.op) {
    case txn_op::kind::put:
      return "{\"request_put\":" + put_body(op.key, op.value, op.lease) + "}";
    case txn_op::kind::del:
      return "{\"request_delete_range\":{\"key\":" + b64q(op.key) + "}}";
    case txn_op::kind::range:
      return "{\"request_range\":{" + range_fields(op.key) + "}}";
  }
  return "{}";
}

std::string compare_json(const txn_compare& c) {
  std::string out = "{\"key\":" + b64q(c.key) + ",\"result\":\"EQUAL\",";
  switch (c.target) {
    case txn_compare::target_kind::mod_revision:
      return out + "\"target\":\"MOD\",\"mod_revision\":\""
             + std::to_string(c.revision) + "\"}";
    case txn_compare::target_kind::create_revision:
      return out + "\"target\":\"CREATE\",\"create_revision\":\""
             + std::to_string(c.revision) + "\"}";
    case txn_compare::target_kind::value:
      return out + "\"target\":\"VALUE\",\"value\":" + b64q(c.value) + "}";
  }
  return out + "}";
}

template <class T, class F>
std::string json_list(const std::vector<T>& xs, F fn) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i)
    out += (i ? "," : "") + fn(xs[i]);
  return out + "]";
}

} // namespace

std::string grant_body(int64_t ttl_s) {
  return "{\"TTL\":" + std::to_string(ttl_s) + "}";
}

std::string lease_id_body(int64_t lease) {
  return "{\"ID\":\"" + std::to_string(lease) + "\"}";
}

std::string put_body(const std::string& key, const std::string& value,
                     int64_t lease) {
  std::string out = "{\"key\":" + b64q(key) + ",\"value\":" + b64q(value);
  if (lease != 0)
    out += ",\"lease\":\"" + std::to_string(lease) + "\"";
  return out + "}";
}

std::string range_body(const std::string& prefix) {
  return "{" + range_fields(prefix) + "}";
}

std::string txn_body(const txn_request& req) {
  return "{\"compare\":" + json_list(req.compares, compare_json)
         + ",\"success\":" + json_list(req.success, op_json)
         + ",\"failure\":" + json_list(req.failure, op_json) + "}";
}

std::string watch_body(const std::string& prefix, int64_t start_revision,
                       bool progress_notify) {
  std::string out = "{\"create_request\":{" + range_fields(prefix);
  if (start_revision > 0)
    out += ",\"start_revision\":\"" + std::to_string(start_revision) + "\"";
  if (progress_notify)
    out += ",\"progress_notify\":true";
  return out + "}}";
}

cp_result<int64_t> parse_grant(std::string_view body) {
  return with_object<int64_t>(body, [](const pb::Value& v)
                                      -> cp_result<int64_t> {
    int64_t id = 0, ttl = 0;
    if (!get_int(v, "ID", id) || !get_int(v, "TTL", ttl) || id == 0)
      return bad("lease grant answer without an ID");
    return id;
  });
}

cp_result<int64_t> parse_keep_alive(std::string_view body) {
  return with_object<int64_t>(body, [](const pb::Value& v)
                                      -> cp_result<int64_t> {
    // The gateway wraps stream messages: {"result":{...}}.
    auto* r = field(v, "result");
    int64_t ttl = 0, rev = 0;
    if (r == nullptr || !get_revision(*r, rev) || !get_int(*r, "TTL", ttl))
      return bad("keep-alive answer without result.header or TTL");
    if (ttl <= 0)
      return cp_error{cp_errc::lease_gone, "lease not found"};
    return ttl;
  });
}

cp_result<int64_t> parse_revision(std::string_view body) {
  return with_object<int64_t>(body, [](const pb::Value& v)
                                      -> cp_result<int64_t> {
    int64_t rev = 0;
    if (!get_revision(v, rev))
      return bad("answer without header.revision");
    return rev;
  });
}

cp_result<range_result> parse_range(std::string_view body) {
  return with_object<range_result>(body, range_of);
}

cp_result<txn_result> parse_txn(std::string_view body) {
  return with_object<txn_result>(body, [](const pb::Value& v)
                                         -> cp_result<txn_result> {
    txn_result r;
    bool ok = false;
    auto* responses = get_list(v, "responses", ok);
    if (!ok || !get_revision(v, r.revision)
        || !get_bool(v, "succeeded", r.succeeded))
      return bad("txn answer without header.revision or responses");
    for (auto& resp : responses->values()) {
      if (!resp.has_struct_value())
        return bad("malformed txn response");
      if (auto* rr = field(resp, "response_range")) {
        auto range = range_of(*rr);
        if (!range)
          return range.error();
        r.ranges.push_back(std::move(range.value()));
      }
    }
    return r;
  });
}

cp_result<watch_message> parse_watch_line(std::string_view line) {
  return with_object<watch_message>(line, [](const pb::Value& v)
                                            -> cp_result<watch_message> {
    watch_message m;
    auto* r = field(v, "result");
    bool ok = false;
    const pb::ListValue* events = nullptr;
    auto* h = r == nullptr ? nullptr : field(*r, "header");
    if (h == nullptr || !h->has_struct_value()
        || !get_int(*h, "revision", m.revision)
        || !get_bool(*r, "created", m.created)
        || !get_bool(*r, "canceled", m.canceled)
        || !get_int(*r, "compact_revision", m.compact_revision)
        || (events = get_list(*r, "events", ok), !ok))
      return bad("watch line without result.header");
    // A cancellation (e.g. for compaction) comes without a revision.
    if (m.revision <= 0 && !m.canceled)
      return bad("watch line without header.revision");
    for (auto& e : events->values()) {
      auto* kv = field(e, "kv");
      auto* type = field(e, "type");
      watch_event ev;
      kv_entry entry;
      if (kv == nullptr || !get_kv(*kv, entry))
        return bad("watch event without a valid kv");
      if (type != nullptr && type->string_value() == "DELETE")
        ev.type = watch_event::kind::del;
      else if (type != nullptr && type->string_value() != "PUT")
        return bad("watch event of unknown type");
      ev.key = std::move(entry.key);
      ev.value = std::move(entry.value);
      ev.mod_revision = entry.mod_revision;
      m.events.push_back(std::move(ev));
    }
    return m;
  });
}

cp_error error_of(unsigned status, std::string_view body) {
  std::string why;
  std::string msg;
  if (auto v = parse_value(body, why); v && v->has_struct_value()) {
    for (auto* name : {"message", "error"})
      if (auto* m = field(*v, name); m && m->has_string_value()) {
        msg = m->string_value();
        break;
      }
  }
  if (msg.find("lease not found") != std::string::npos)
    return {cp_errc::lease_gone, msg};
  if (!msg.empty())
    return {cp_errc::server, "HTTP " + std::to_string(status) + ": " + msg};
  return {cp_errc::http, "HTTP " + std::to_string(status)
                           + " without an etcd error message"};
}

} // namespace parley::cluster::etcd_json
