#pragma once

// The pure part of `metrics top` (tools/parleyctl/top.cpp): two samples of
// GET /v1/admin/metrics -> the text of one refresh.

#include <string>
#include <vector>

#include "tools/parleyctl/json.hpp"

namespace parley::ctl {

/// Rates of every counter, gauges, and count/s, p50, p99 and mean of each
/// latency histogram over the interval between `prev` and `cur` (their
/// time_ms; `fallback_s` when those are missing).
std::string top_view(const json& prev, const json& cur, double fallback_s);

/// The bucket bound under which the fraction `q` of `counts` falls
/// ("<=250 us"; ">B" for the overflow bucket; "-" when empty). `counts`
/// has one more entry than `bounds_us`.
std::string percentile(const std::vector<double>& bounds_us,
                       const std::vector<double>& counts, double q);

/// Microseconds as "850 us", "1.5 ms", "2.10 s".
std::string micros(double us);

} // namespace parley::ctl
