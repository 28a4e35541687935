#include "runtime/admin/jobs.hpp"

#include <algorithm>
#include <vector>

#include "runtime/admin/json_text.hpp"

namespace parley::admin {

job::job(uint64_t id, std::string kind, std::string what, std::string unit)
  : id_(id),
    kind_(std::move(kind)),
    what_(std::move(what)),
    unit_(std::move(unit)),
    started_(std::chrono::steady_clock::now()) {
}

// Updates after finish() are dropped: a refresh hook that read its source
// just before the job ended must not leave a stale phase or count.

void job::set_phase(std::string phase) {
  std::lock_guard<std::mutex> guard{mu_};
  if (state_ == "running")
    phase_ = std::move(phase);
}

void job::set_progress(uint64_t done, uint64_t total) {
  std::lock_guard<std::mutex> guard{mu_};
  if (state_ != "running")
    return;
  done_ = done;
  total_ = total;
}

void job::add_done(uint64_t n) {
  std::lock_guard<std::mutex> guard{mu_};
  if (state_ == "running")
    done_ += n;
}

void job::finish(std::string error) {
  std::lock_guard<std::mutex> guard{mu_};
  if (state_ != "running")
    return;
  state_ = error.empty() ? "done" : "failed";
  error_ = std::move(error);
  phase_ = state_;
  ended_ = std::chrono::steady_clock::now();
  refresh_ = nullptr;
}

bool job::finished() const {
  std::lock_guard<std::mutex> guard{mu_};
  return state_ != "running";
}

void job::set_refresh(std::function<void(job&)> refresh) {
  std::lock_guard<std::mutex> guard{mu_};
  refresh_ = std::move(refresh);
}

std::string job::to_json() const {
  std::function<void(job&)> refresh;
  {
    std::lock_guard<std::mutex> guard{mu_};
    refresh = refresh_;
  }
  if (refresh)
    refresh(const_cast<job&>(*this));
  std::lock_guard<std::mutex> guard{mu_};
  auto end = state_ == "running" ? std::chrono::steady_clock::now() : ended_;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                   end - started_)
                   .count();
  return "{\"job\":\"" + std::to_string(id_) + "\",\"kind\":"
         + json_quote(kind_) + ",\"what\":" + json_quote(what_)
         + ",\"state\":\"" + state_ + "\",\"phase\":" + json_quote(phase_)
         + ",\"done\":" + std::to_string(done_)
         + ",\"total\":" + std::to_string(total_)
         + ",\"unit\":" + json_quote(unit_) + ",\"error\":"
         + json_quote(error_) + ",\"elapsed_ms\":" + std::to_string(elapsed)
         + "}";
}

std::shared_ptr<job> job_board::create(std::string kind, std::string what,
                                       std::string unit) {
  std::lock_guard<std::mutex> guard{mu_};
  auto j = std::make_shared<job>(next_++, std::move(kind), std::move(what),
                                 std::move(unit));
  jobs_.emplace(j->id(), j);
  while (jobs_.size() > max_jobs) {
    auto oldest = std::find_if(jobs_.begin(), jobs_.end(),
                               [](auto& kv) { return kv.second->finished(); });
    if (oldest == jobs_.end())
      break;
    jobs_.erase(oldest);
  }
  return j;
}

std::shared_ptr<job> job_board::find(uint64_t id) const {
  std::lock_guard<std::mutex> guard{mu_};
  auto i = jobs_.find(id);
  return i == jobs_.end() ? nullptr : i->second;
}

std::string job_board::to_json() const {
  std::vector<std::shared_ptr<job>> all;
  {
    std::lock_guard<std::mutex> guard{mu_};
    for (auto i = jobs_.rbegin(); i != jobs_.rend(); ++i)
      all.push_back(i->second);
  }
  std::string out = "{\"jobs\":[";
  for (size_t i = 0; i < all.size(); ++i)
    out += (i ? "," : "") + all[i]->to_json();
  return out + "]}";
}

} // namespace parley::admin
