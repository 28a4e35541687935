#pragma once

// Reads one histogram out of a Prometheus text page (parleyd's /metrics),
// so the bench can put the server's own latency beside what its client
// saw. Header-only and pure: the unit tests feed it garbage.

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::bench {

/// Cumulative buckets of one histogram: (upper bound in seconds, count).
/// The +Inf bucket has bound infinity.
struct prom_histogram {
  std::vector<std::pair<double, uint64_t>> buckets;

  uint64_t count() const {
    return buckets.empty() ? 0 : buckets.back().second;
  }

  /// `later` minus this (the observations in between); nullopt if the
  /// two do not have the same buckets or a count went down (a restart).
  std::optional<prom_histogram> delta_to(const prom_histogram& later) const {
    if (later.buckets.size() != buckets.size())
      return std::nullopt;
    prom_histogram out;
    for (size_t i = 0; i < buckets.size(); ++i) {
      if (later.buckets[i].first != buckets[i].first
          || later.buckets[i].second < buckets[i].second)
        return std::nullopt;
      out.buckets.emplace_back(buckets[i].first,
                               later.buckets[i].second - buckets[i].second);
    }
    return out;
  }

  /// The upper bound (seconds) of the bucket holding quantile `q`, or
  /// nullopt if empty.
  std::optional<double> quantile_bound(double q) const {
    auto n = count();
    if (n == 0)
      return std::nullopt;
    auto rank = static_cast<double>(n) * q;
    for (auto& [bound, c] : buckets)
      if (static_cast<double>(c) >= rank)
        return bound;
    return buckets.back().first;
  }
};

/// Parses the `<name>_bucket{le="…"} N` lines of histogram `name` in
/// `text`. nullopt unless there is at least one bucket, the last is +Inf,
/// the bounds increase and the counts do not decrease; lines that do not
/// parse are not buckets.
inline std::optional<prom_histogram> parse_histogram(std::string_view text,
                                                     std::string_view name) {
  std::string prefix{name};
  prefix += "_bucket{le=\"";
  prom_histogram h;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos)
      end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, prefix.size()) != prefix)
      continue;
    auto rest = line.substr(prefix.size());
    auto close = rest.find("\"} ");
    if (close == std::string_view::npos || close == 0 || close > 32)
      continue;
    std::string le{rest.substr(0, close)};
    std::string value{rest.substr(close + 3)};
    if (value.empty() || value.size() > 20
        || value.find_first_not_of("0123456789") != std::string::npos)
      continue;
    double bound;
    if (le == "+Inf") {
      bound = std::numeric_limits<double>::infinity();
    } else {
      char* stop = nullptr;
      bound = std::strtod(le.c_str(), &stop);
      if (stop != le.c_str() + le.size() || !(bound >= 0))
        continue;
    }
    h.buckets.emplace_back(bound, std::strtoull(value.c_str(), nullptr, 10));
  }
  if (h.buckets.empty()
      || h.buckets.back().first != std::numeric_limits<double>::infinity())
    return std::nullopt;
  for (size_t i = 1; i < h.buckets.size(); ++i)
    if (!(h.buckets[i].first > h.buckets[i - 1].first)
        || h.buckets[i].second < h.buckets[i - 1].second)
      return std::nullopt;
  return h;
}

} // namespace parley::bench
