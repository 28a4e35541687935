#include "runtime/store/sync_by_id.hpp"

#include <utility>

namespace parley::store {

caf::expected<sync_page>
sync_by_id(const partition_reads& reads, user_id user, const sync_request& req,
           size_t window, const answer_order& order) {
  user_sync job(user, req, reads.partitions, window);
  for (;;) {
    auto asks = job.next();
    if (job.done())
      return job.result();
    std::vector<std::function<void()>> answers;
    caf::error err;
    // Asks `answer` each of `requests`; the answers wait to be taken.
    auto ask = [&](const auto& requests, const auto& answer) {
      for (auto& r : requests) {
        auto a = answer(r);
        if (!a) {
          err = a.error();
          return;
        }
        answers.emplace_back(
          [&job, x = std::move(*a)]() mutable { job.take(std::move(x)); });
      }
    };
    ask(asks.convs, reads.convs);
    if (!err)
      ask(asks.users, reads.users);
    if (err)
      return err;
    if (order)
      order(answers);
    for (auto& take : answers)
      take();
  }
}

} // namespace parley::store
