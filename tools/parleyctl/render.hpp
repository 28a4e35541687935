#pragma once

// render: a node's answer as text a person reads (the output contract of
// issue 23): an object's scalar fields as aligned "key  value" lines,
// arrays of flat objects as aligned tables with a header row, nested
// objects as titled blocks. *_ms points in time are shown as UTC times
// (0: never), other *_ms as durations, *_bytes as sizes. Text goes
// through visible(): clients choose names and ids, and a control
// character must not reach the operator's terminal.

#include <cstdint>
#include <string>
#include <vector>

#include "tools/parleyctl/json.hpp"

namespace parley::ctl {

/// The whole answer.
std::string render(const json& answer);

/// One scalar as shown for the field `key` (strings through visible()).
/// A point in time (time_ms, created_ms, last_seen_ms, started_ms,
/// sent_ms, *_at_ms, ...) shows as a UTC time, 0 as "never"; other *_ms
/// (elapsed_ms, uptime_ms, ...) as durations.
std::string show_value(const std::string& key, const json& v);

/// `text` safe for a terminal: C0 controls, DEL and stray non-UTF-8
/// bytes become "\x1b", C1 controls (U+0080-U+009F) "\u009b"; the rest
/// (valid UTF-8) is unchanged. Names and ids clients chose pass through
/// here before they reach the operator's screen.
std::string visible(const std::string& text);

/// Whether the *_ms field `key` names a point in time, not a duration.
bool point_in_time(const std::string& key);

/// Epoch milliseconds as "2026-12-07 17:40:01" (UTC).
std::string utc_time(int64_t epoch_ms);
/// A duration: "850 ms", "5.3 s", "2m 05s", "3h 04m", "2d 03h".
std::string duration(double ms);
/// A size: "512 B", "1.5 KiB", "3.2 GiB".
std::string human_bytes(double bytes);

/// Rows as an aligned table (the first row is the header), each line
/// indented by `indent`.
std::string table(const std::vector<std::vector<std::string>>& rows,
                  const std::string& indent = "");

} // namespace parley::ctl
