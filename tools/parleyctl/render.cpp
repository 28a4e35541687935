#include "tools/parleyctl/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace parley::ctl {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size()
         && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool flat(const json& v) {
  if (v.kind != json::object)
    return false;
  return std::all_of(v.fields.begin(), v.fields.end(),
                     [](auto& f) { return f.second.scalar(); });
}

bool table_array(const json& v) {
  return v.kind == json::array && !v.items.empty()
         && std::all_of(v.items.begin(), v.items.end(), flat);
}

bool scalar_array(const json& v) {
  return v.kind == json::array
         && std::all_of(v.items.begin(), v.items.end(),
                        [](auto& i) { return i.scalar(); });
}

/// Display width of UTF-8 text (code points; good enough for tables).
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

std::string pad(const std::string& s, size_t w) {
  auto n = width(s);
  return n >= w ? s : s + std::string(w - n, ' ');
}

void render_object(const json& obj, const std::string& indent,
                   std::string& out);

/// A table of an array of flat objects: columns are the keys in the order
/// first seen.
std::string object_table(const json& arr, const std::string& indent) {
  std::vector<std::string> keys;
  for (auto& item : arr.items)
    for (auto& [k, v] : item.fields)
      if (std::find(keys.begin(), keys.end(), k) == keys.end())
        keys.push_back(k);
  std::vector<std::vector<std::string>> rows{{}};
  for (auto& k : keys)
    rows[0].push_back(visible(k));
  for (auto& item : arr.items) {
    std::vector<std::string> row;
    for (auto& k : keys) {
      auto* v = item.get(k);
      row.push_back(v ? show_value(k, *v) : "");
    }
    rows.push_back(std::move(row));
  }
  return table(rows, indent);
}

void render_complex(const std::string& key, const json& v,
                    const std::string& indent, std::string& out) {
  out += "\n" + indent + visible(key) + ":\n";
  if (v.kind == json::string) { // multi-line text (LevelDB's statistics)
    size_t pos = 0;
    while (pos < v.text.size()) {
      auto end = v.text.find('\n', pos);
      if (end == std::string::npos)
        end = v.text.size();
      out += indent + "  " + visible(v.text.substr(pos, end - pos)) + "\n";
      pos = end + 1;
    }
  } else if (table_array(v)) {
    out += object_table(v, indent + "  ");
  } else if (v.kind == json::object) {
    render_object(v, indent + "  ", out);
  } else { // an array of mixed things: one entry per line
    for (auto& item : v.items) {
      if (item.kind == json::object) {
        render_object(item, indent + "  ", out);
        out += "\n";
      } else {
        out += indent + "  " + visible(to_json(item)) + "\n";
      }
    }
  }
}

bool multi_line(const json& v) {
  return v.kind == json::string && v.text.find('\n') != std::string::npos;
}

void render_object(const json& obj, const std::string& indent,
                   std::string& out) {
  size_t w = 0;
  for (auto& [k, v] : obj.fields)
    if ((v.scalar() && !multi_line(v)) || scalar_array(v))
      w = std::max(w, width(visible(k)));
  for (auto& [k, v] : obj.fields) {
    if (v.scalar() && !multi_line(v)) {
      out += indent + pad(visible(k), w) + "  " + show_value(k, v) + "\n";
    } else if (scalar_array(v)) {
      std::string list;
      for (auto& item : v.items)
        list += (list.empty() ? "" : ", ") + show_value(k, item);
      out += indent + pad(visible(k), w) + "  "
             + (list.empty() ? "(none)" : list) + "\n";
    }
  }
  for (auto& [k, v] : obj.fields)
    if (!((v.scalar() && !multi_line(v)) || scalar_array(v)))
      render_complex(k, v, indent, out);
}

} // namespace

std::string utc_time(int64_t epoch_ms) {
  std::time_t t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string duration(double ms) {
  char buf[48];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  } else if (ms < 60e3) {
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1e3);
  } else {
    auto s = static_cast<long long>(ms / 1e3);
    if (s < 3600)
      std::snprintf(buf, sizeof buf, "%lldm %02llds", s / 60, s % 60);
    else if (s < 86400)
      std::snprintf(buf, sizeof buf, "%lldh %02lldm", s / 3600,
                    s % 3600 / 60);
    else
      std::snprintf(buf, sizeof buf, "%lldd %02lldh", s / 86400,
                    s % 86400 / 3600);
  }
  return buf;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024 && u < 5) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
  return buf;
}

std::string visible(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  char buf[12];
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) { // C0 and DEL
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A UTF-8 sequence: copied when well formed and not a C1 control.
    size_t n = c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    bool ok = n > 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k)
      ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (!ok) { // a stray byte (in an 8-bit terminal 0x80-0x9f are C1)
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    auto c2 = static_cast<unsigned char>(text[i + 1]);
    if (c == 0xC2 && c2 <= 0x9F) { // U+0080-U+009F: C1
      std::snprintf(buf, sizeof buf, "\\u%04x", c2);
      out += buf;
    } else {
      out.append(text, i, n);
    }
    i += n;
  }
  return out;
}

bool point_in_time(const std::string& key) {
  if (!ends_with(key, "_ms"))
    return false;
  if (ends_with(key, "_at_ms"))
    return true;
  auto stem = key.substr(0, key.size() - 3);
  if (stem == "time" || stem == "since" || stem == "expires")
    return true;
  static const char* const events[] = {"created", "seen",  "started",
                                       "sent",    "ended", "finished",
                                       "updated", "modified"};
  for (auto* e : events)
    if (stem == e || ends_with(stem, std::string{"_"} + e))
      return true;
  return false;
}

std::string show_value(const std::string& key, const json& v) {
  if (v.kind == json::null)
    return "-";
  if (v.kind != json::number)
    return visible(v.text);
  double d = std::strtod(v.text.c_str(), nullptr);
  if (point_in_time(key)) // 0: the thing never happened
    return d <= 0 ? "never" : utc_time(static_cast<int64_t>(d));
  if (ends_with(key, "_ms")) {
    // Other *_ms are durations, unless the value can only be an epoch
    // time (2001-2286).
    if (d >= 1e12 && d < 1e13)
      return utc_time(static_cast<int64_t>(d));
    if (d >= 0)
      return duration(d);
  }
  if (ends_with(key, "_bytes") && d >= 0)
    return human_bytes(d);
  return v.text;
}

std::string table(const std::vector<std::vector<std::string>>& rows,
                  const std::string& indent) {
  std::vector<size_t> w;
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i)
        w.push_back(0);
      w[i] = std::max(w[i], width(r[i]));
    }
  std::string out;
  for (auto& r : rows) {
    std::string line = indent;
    for (size_t i = 0; i < r.size(); ++i)
      line += i + 1 < r.size() ? pad(r[i], w[i] + 2) : r[i];
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string render(const json& answer) {
  std::string out;
  if (answer.kind == json::object)
    render_object(answer, "", out);
  else if (table_array(answer))
    out = object_table(answer, "");
  else
    out = visible(to_json(answer)) + "\n";
  return out;
}

} // namespace parley::ctl
