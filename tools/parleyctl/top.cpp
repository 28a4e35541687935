// metrics top: GET /v1/admin/metrics every second; counters become
// per-second rates over the last interval, latency histograms (bucket
// counts, the last one the overflow) become p50/p99 of the interval.
// Redrawn in place on a terminal (q or Ctrl-C ends), appended otherwise.

#include <chrono>
#include <cstdio>
#include <iostream>

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include "tools/parleyctl/render.hpp"
#include "tools/parleyctl/run.hpp"
#include "tools/parleyctl/top.hpp"

namespace parley::ctl {

namespace {

using clock_type = std::chrono::steady_clock;

/// The terminal in non-canonical, no-echo mode while it lives.
class raw_terminal {
public:
  raw_terminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0)
      return;
    termios raw = saved_;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~raw_terminal() {
    if (active_)
      tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool active() const { return active_; }

private:
  termios saved_{};
  bool active_ = false;
};

/// Waits up to `d`; false when q was typed or Ctrl-C pressed.
bool wait_or_quit(clock_type::duration d, bool keys) {
  auto until = clock_type::now() + d;
  while (!sigint_seen) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  until - clock_type::now()).count();
    if (left <= 0)
      return true;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int n = poll(&p, keys ? 1 : 0, static_cast<int>(std::min<long>(left, 100)));
    if (n > 0 && (p.revents & POLLIN)) {
      char c = 0;
      if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
        return false;
    }
  }
  return false;
}

std::string fixed(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

} // namespace

std::string micros(double us) {
  if (us < 1000)
    return fixed(us, 0) + " us";
  if (us < 1e6)
    return fixed(us / 1e3, 1) + " ms";
  return fixed(us / 1e6, 2) + " s";
}

std::string percentile(const std::vector<double>& bounds_us,
                       const std::vector<double>& counts, double q) {
  double total = 0;
  for (auto c : counts)
    total += c;
  if (total <= 0)
    return "-";
  double cum = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cum += counts[i];
    if (cum >= q * total) {
      if (i < bounds_us.size())
        return "<=" + micros(bounds_us[i]);
      return bounds_us.empty() ? "-" : ">" + micros(bounds_us.back());
    }
  }
  return "-";
}

namespace {

std::vector<double> numbers(const json* arr) {
  std::vector<double> out;
  if (arr && arr->kind == json::array)
    for (auto& v : arr->items)
      out.push_back(std::strtod(v.text.c_str(), nullptr));
  return out;
}

} // namespace

std::string top_view(const json& prev, const json& cur, double fallback_s) {
  // The node's own clock between the samples; parleyctl's (the time
  // between its polls, which includes the requests' delays) only when a
  // sample lacks time_ms or it did not increase.
  auto* t0 = prev.get("time_ms");
  auto* t1 = cur.get("time_ms");
  double dt = 0;
  if (t0 && t1 && t0->kind == json::number && t1->kind == json::number)
    dt = (cur.num("time_ms") - prev.num("time_ms")) / 1000;
  if (dt <= 0)
    dt = fallback_s > 0 ? fallback_s : 1;
  std::string out;
  std::vector<std::vector<std::string>> rows{{"counter", "per_second",
                                              "total"}};
  auto* now_c = cur.get("counters");
  auto* old_c = prev.get("counters");
  if (now_c)
    for (auto& [k, v] : now_c->fields) {
      double before = old_c ? old_c->num(k) : 0;
      double rate = (std::strtod(v.text.c_str(), nullptr) - before) / dt;
      rows.push_back({k, fixed(rate < 0 ? 0 : rate, 1), v.text});
    }
  if (rows.size() > 1)
    out += table(rows) + "\n";
  rows = {{"gauge", "value"}};
  if (auto* g = cur.get("gauges"))
    for (auto& [k, v] : g->fields)
      rows.push_back({k, show_value(k, v)});
  if (rows.size() > 1)
    out += table(rows) + "\n";
  rows = {{"latency", "per_second", "p50", "p99", "mean"}};
  auto* old_l = prev.get("latency");
  if (auto* l = cur.get("latency"))
    for (auto& [k, h] : l->fields) {
      auto bounds = numbers(h.get("bounds_us"));
      auto counts = numbers(h.get("counts"));
      auto* ph = old_l ? old_l->get(k) : nullptr;
      auto before = numbers(ph ? ph->get("counts") : nullptr);
      double n = 0;
      for (size_t i = 0; i < counts.size(); ++i) {
        counts[i] -= i < before.size() ? before[i] : 0;
        if (counts[i] < 0)
          counts[i] = 0;
        n += counts[i];
      }
      double sum = h.num("sum_us") - (ph ? ph->num("sum_us") : 0);
      rows.push_back({k, fixed(n / dt, 1), percentile(bounds, counts, 0.5),
                      percentile(bounds, counts, 0.99),
                      n > 0 ? micros(sum / n) : "-"});
    }
  if (rows.size() > 1)
    out += table(rows);
  return out;
}

int run_top(const settings& s, const admin::request& req) {
  bool tty = !s.json && isatty(STDOUT_FILENO);
  raw_terminal term; // q quits (only when stdin is a terminal)
  catch_sigint(true);
  int code = exit_ok;
  auto prev = send(s, req, code, &sigint_seen);
  auto prev_at = clock_type::now();
  long shown = 0;
  if (prev && s.json) {
    std::cout << to_json(*prev) << "\n" << std::flush;
    ++shown;
  } else if (prev && tty) {
    std::cout << "\x1b[H\x1b[2J" << "metrics of " << s.node.text()
              << ": the first rates in a second (q quits)\n" << std::flush;
  }
  while (prev && (s.count < 0 || shown < s.count)) {
    if (!wait_or_quit(std::chrono::seconds(1), term.active()))
      break;
    auto cur = send(s, req, code, &sigint_seen);
    if (!cur)
      break;
    auto at = clock_type::now();
    if (s.json) {
      std::cout << to_json(*cur) << "\n";
    } else {
      auto head = "metrics of " + s.node.text() + " at "
                  + utc_time(static_cast<int64_t>(cur->num("time_ms")))
                  + " UTC" + (tty ? " (q quits)" : "") + "\n\n";
      auto view = top_view(*prev, *cur,
                           std::chrono::duration<double>(at - prev_at).count());
      std::cout << (tty ? "\x1b[H\x1b[2J" : "") << head << view
                << (tty ? "" : "\n");
    }
    std::cout << std::flush;
    prev = std::move(cur);
    prev_at = at;
    ++shown;
  }
  catch_sigint(false);
  // q and Ctrl-C end top normally.
  return code == exit_interrupted ? exit_ok : code;
}

} // namespace parley::ctl
