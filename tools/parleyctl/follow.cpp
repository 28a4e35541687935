// Following a long operation (client_mode::job): a progress bar with an
// ETA on a terminal, plain lines otherwise, one JSON line per poll with
// --json. Ctrl-C stops watching, never the job.

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <unistd.h>

#include "tools/parleyctl/render.hpp"
#include "tools/parleyctl/run.hpp"

namespace parley::ctl {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr auto poll_every = std::chrono::milliseconds(500);

/// Waits `d`, returning early (false) on Ctrl-C.
bool wait_for(clock_type::duration d) {
  auto until = clock_type::now() + d;
  while (clock_type::now() < until) {
    if (sigint_seen)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !sigint_seen;
}

std::string bar(double done, double total) {
  const int width = 30;
  int full = total > 0 ? static_cast<int>(width * std::min(1.0, done / total))
                       : 0;
  return "[" + std::string(full, '#') + std::string(width - full, '.') + "]";
}

std::string count(const json& job) {
  auto done = job.str("done"), total = job.str("total"), unit = job.str("unit");
  std::string s = done.empty() ? "0" : visible(done);
  if (!total.empty() && total != "0")
    s += "/" + visible(total);
  return unit.empty() ? s : s + " " + visible(unit);
}

/// The ETA from the progress seen since following started.
struct rate_watch {
  clock_type::time_point t0 = clock_type::now();
  double d0 = -1;

  std::string eta(double done, double total) {
    auto now = clock_type::now();
    if (d0 < 0 || done < d0) {
      d0 = done;
      t0 = now;
    }
    double secs = std::chrono::duration<double>(now - t0).count();
    if (total <= 0 || done >= total)
      return "";
    if (secs < 0.5 || done <= d0)
      return "ETA ?";
    double rate = (done - d0) / secs;
    return "ETA " + duration((total - done) / rate * 1000);
  }
};

} // namespace

int follow_job(const settings& s, json job) {
  bool tty = !s.json && isatty(STDOUT_FILENO);
  auto id = visible(job.str("job"));
  auto kind = job.str("kind").empty() ? std::string{"job"}
                                      : visible(job.str("kind"));
  auto watch = admin::parse({"job", "watch", id});
  if (id.empty() || watch.index() != 0) {
    std::cerr << "parleyctl: the node's answer names no job: "
              << visible(to_json(job)) << "\n";
    return exit_refused;
  }
  auto req = admin::to_request(std::get<0>(watch));
  catch_sigint(true);
  rate_watch rate;
  std::string last_phase, last_done;
  auto last_print = clock_type::time_point{};
  int code = exit_ok;
  while (true) {
    auto state = job.str("state");
    auto phase = visible(job.str("phase"));
    double done = job.num("done"), total = job.num("total");
    bool over = state == "done" || state == "failed";
    auto eta = rate.eta(done, total);
    if (s.json) {
      std::cout << to_json(job) << "\n" << std::flush;
    } else if (tty) {
      std::string line = kind + " " + (total > 0 ? bar(done, total) + " " : "")
                         + count(job) + "  " + phase
                         + (eta.empty() ? "" : "  " + eta);
      std::cout << "\r\x1b[K" << line << std::flush;
    } else if (!over && (phase != last_phase || job.str("done") != last_done)
               && clock_type::now() - last_print >= std::chrono::seconds(1)) {
      std::cout << kind << ": " << phase << " " << count(job)
                << (eta.empty() ? "" : "  " + eta) << "\n"
                << std::flush;
      last_phase = phase;
      last_done = job.str("done");
      last_print = clock_type::now();
    }
    if (over) {
      if (tty)
        std::cout << "\n";
      auto elapsed = job.get("elapsed_ms")
                       ? " in " + duration(job.num("elapsed_ms"))
                       : std::string{};
      if (state == "failed") {
        std::cout << std::flush;
        std::cerr << "parleyctl: the " << kind << " failed: "
                  << visible(job.str("error")) << "\n";
        code = exit_refused;
      } else if (!s.json) {
        std::cout << kind << " done: " << count(job) << elapsed << "\n";
      }
      break;
    }
    if (!wait_for(poll_every)) {
      code = exit_interrupted;
      break;
    }
    auto next = send(s, req, code, &sigint_seen);
    if (!next) {
      if (code != exit_interrupted && tty)
        std::cout << "\n";
      break;
    }
    job = std::move(*next);
  }
  catch_sigint(false);
  if (code == exit_interrupted) {
    std::cout << (tty ? "\n" : "") << std::flush;
    std::cerr << "the " << kind << " keeps running on the node; watch it "
              << "with: parleyctl job watch " << id << "\n";
  } else if (code == exit_unreachable) {
    // A poll failed (the node restarting, the network): the job most
    // likely still runs. The exit code stays 3.
    std::cout << std::flush;
    std::cerr << "the " << kind << " likely keeps running on the node; "
              << "watch it with: parleyctl job watch " << id << "\n";
  }
  std::cout << std::flush;
  return code;
}

} // namespace parley::ctl
