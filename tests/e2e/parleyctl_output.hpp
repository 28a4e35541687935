#pragma once

// Reading parleyctl's answers in e2e tests (parleyctl_convs_test.cpp,
// parleyctl_inbox_test.cpp): --json output as a protobuf Struct, a table's
// "key  value" lines and rows, a successful run, and a client's unread
// counts as its sync reports them.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "parleyctl_run.hpp"
#include "parleyd_node.hpp"
#include "ws_client.hpp"

namespace parley::e2e {

namespace pb = google::protobuf;

/// `json` (parleyctl --json's stdout) as a protobuf Struct (numbers become
/// doubles: exact for the small ones these tests compare).
inline pb::Struct parse_json(const std::string& json) {
  pb::Struct s;
  auto st = pb::util::JsonStringToMessage(json, &s);
  REQUIRE_MESSAGE(st.ok(), "not JSON: " << json);
  return s;
}

inline double num(const pb::Struct& s, const std::string& key) {
  auto i = s.fields().find(key);
  REQUIRE_MESSAGE(i != s.fields().end(), "no " << key);
  return i->second.number_value();
}

inline std::string str(const pb::Struct& s, const std::string& key) {
  auto i = s.fields().find(key);
  REQUIRE_MESSAGE(i != s.fields().end(), "no " << key);
  return i->second.string_value();
}

inline const pb::ListValue& list(const pb::Struct& s, const std::string& key) {
  auto i = s.fields().find(key);
  REQUIRE_MESSAGE(i != s.fields().end(), "no " << key);
  return i->second.list_value();
}

inline std::vector<std::string> words(const std::string& line) {
  std::istringstream in{line};
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

/// The value of a "key  value" line of a table output (first match).
inline std::string table_value(const std::string& out, const std::string& key) {
  for (auto& l : lines(out)) {
    auto w = words(l);
    if (w.size() >= 2 && w[0] == key)
      return w[1];
  }
  return {};
}

/// The rows of the first table whose header holds every name in `cols`:
/// each row as column name -> cell, cut at the header's column starts
/// (cells may hold spaces: "44 B", a time); rows end at a blank line.
inline std::vector<std::map<std::string, std::string>>
table_rows(const std::string& out, const std::vector<std::string>& cols) {
  auto trim = [](std::string x) {
    auto b = x.find_first_not_of(' ');
    auto e = x.find_last_not_of(' ');
    return b == std::string::npos ? std::string{} : x.substr(b, e - b + 1);
  };
  auto ls = lines(out);
  for (size_t i = 0; i < ls.size(); ++i) {
    auto head = words(ls[i]);
    bool all = !head.empty();
    for (auto& c : cols)
      all = all && std::find(head.begin(), head.end(), c) != head.end();
    if (!all)
      continue;
    std::vector<size_t> at;
    size_t from = 0;
    for (auto& h : head) {
      at.push_back(ls[i].find(h, from));
      from = at.back() + h.size();
    }
    std::vector<std::map<std::string, std::string>> rows;
    for (size_t j = i + 1; j < ls.size() && !trim(ls[j]).empty(); ++j) {
      std::map<std::string, std::string> row;
      for (size_t k = 0; k < head.size(); ++k) {
        auto& l = ls[j];
        auto b = std::min(at[k], l.size());
        auto e = k + 1 < at.size() ? std::min(at[k + 1], l.size()) : l.size();
        row[head[k]] = trim(l.substr(b, e - b));
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }
  return {};
}

/// Each conversation's unread count and the total, as `token`'s sync sees
/// them.
inline std::pair<std::map<uint64_t, uint64_t>, uint64_t>
unread_of(const node& n, const std::string& token) {
  ws_client c{n.port};
  auto fmt = gateway::frame_format::binary;
  REQUIRE(c.call(hello(1, token), fmt)->has_welcome());
  auto pages = sync_all(c, {}, 100, fmt, 2);
  REQUIRE(!pages.empty());
  std::map<uint64_t, uint64_t> per;
  for (auto& p : pages)
    for (auto& e : p.inbox())
      per[e.conversation_id()] = e.unread_count();
  return {per, pages[0].total_unread()};
}

/// A GroupCreate of `name` with `members` (usernames).
inline v1::ClientFrame group_frame(uint32_t rid, const std::string& name,
                                   const std::vector<std::string>& members) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  f.mutable_group_create()->set_name(name);
  for (auto& m : members)
    f.mutable_group_create()->add_usernames(m);
  return f;
}

/// Runs parleyctl `args`; requires exit 0 (its output shown otherwise).
inline ctl_result ok(const node& n, const std::vector<std::string>& args) {
  auto r = ctl(n, args);
  INFO("parleyctl stdout: " << r.out);
  INFO("parleyctl stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

} // namespace parley::e2e
