#pragma once

// job_board: the long operations a node runs for its operator (partition
// moves, drains, inbox rebuilds), each with an id, a phase and progress,
// so that parleyctl can draw a progress bar and an ETA, and a job outlives
// the request (and the parleyctl) that started it. Thread-safe.
//
// A job's JSON (GET /v1/admin/jobs/ID, and each element of GET
// /v1/admin/jobs):
//   {"job":"7","kind":"partition move","what":"partition 3 to node 2",
//    "state":"running"|"done"|"failed","phase":"streaming",
//    "done":120,"total":400,"unit":"keys","error":"",
//    "elapsed_ms":5310}
// `total` 0: not known yet. A handler that starts a job answers 202 with
// the job's JSON.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace parley::admin {

class job {
public:
  job(uint64_t id, std::string kind, std::string what, std::string unit);

  uint64_t id() const { return id_; }
  /// Progress of a running job; ignored once it finished (a late update
  /// from a refresh hook or a worker leaves the end as finish() made it).
  void set_phase(std::string phase);
  void set_progress(uint64_t done, uint64_t total);
  void add_done(uint64_t n);
  /// Ends the job: done (error empty) or failed; the phase becomes the
  /// state. A second call is ignored.
  void finish(std::string error = {});
  bool finished() const;
  /// Called before each to_json(), without the job's lock (it may call
  /// set_phase and the like, and may race finish()): lets a job mirror
  /// progress kept elsewhere (a move driver's status). Optional; dropped
  /// by finish().
  void set_refresh(std::function<void(job&)> refresh);
  std::string to_json() const;

private:
  // Fields are guarded by mu_; the refresh hook runs with it released.
  mutable std::mutex mu_;
  const uint64_t id_;
  const std::string kind_, what_, unit_;
  std::string phase_ = "starting";
  std::string state_ = "running";
  std::string error_;
  uint64_t done_ = 0, total_ = 0;
  std::chrono::steady_clock::time_point started_, ended_;
  std::function<void(job&)> refresh_;
};

class job_board {
public:
  static constexpr size_t max_jobs = 100;

  std::shared_ptr<job> create(std::string kind, std::string what,
                              std::string unit);
  /// The job `id`, or null (unknown, or dropped from the board).
  std::shared_ptr<job> find(uint64_t id) const;
  /// {"jobs":[...]} newest first. The board keeps at most max_jobs: past
  /// that, the oldest finished jobs are dropped (a running job never, so
  /// more than max_jobs running ones are all kept).
  std::string to_json() const;

private:
  mutable std::mutex mu_;
  uint64_t next_ = 1;
  std::map<uint64_t, std::shared_ptr<job>> jobs_;
};

} // namespace parley::admin
