#include "actors/user.hpp"

#include <memory>
#include <string>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/user_sync.hpp"

namespace parley {

namespace {

using self_ptr = user_actor::stateful_pointer<user_state>;
using job_ptr = std::shared_ptr<store::user_sync>;
using promise = caf::typed_response_promise<sync_page>;

void ended(self_ptr self) {
  auto& st = self->state;
  --st.in_flight;
  if (st.closing && st.in_flight == 0)
    self->quit();
}

/// One step's answers: how many are still to come, and whether one failed
/// (the page has been answered with its error then).
struct step_state {
  size_t pending = 0;
  bool failed = false;
};

/// Sends what `job` asks next, or answers the page once it is done.
void run(self_ptr self, job_ptr job, promise rp) {
  auto asks = job->next();
  if (job->done()) {
    auto page = job->result();
    if (page) {
      ++self->state.pages;
      rp.deliver(std::move(*page));
    } else {
      rp.deliver(std::move(page.error()));
    }
    ended(self);
    return;
  }
  auto step = std::make_shared<step_state>();
  step->pending = asks.convs.size() + asks.users.size();
  auto on_error = [self, step, rp](caf::error& err) mutable {
    if (step->failed)
      return;
    step->failed = true;
    // A timeout (caf::sec::request_timeout) is retryable on the wire;
    // so is unavailable (a partition owned elsewhere). Nothing was written.
    rp.deliver(std::move(err));
    ended(self);
  };
  auto on_answer = [self, step, job, rp](auto& answer) {
    if (step->failed)
      return;
    job->take(std::move(answer));
    if (--step->pending == 0)
      run(self, job, rp);
  };
  auto& reads = self->state.deps.reads;
  for (auto& r : asks.convs)
    self->request(reads, timeouts::ask, fetch_atom::value, std::move(r))
      .then([on_answer](conv_answers& a) mutable { on_answer(a); },
            on_error);
  for (auto& r : asks.users)
    self->request(reads, timeouts::ask, fetch_atom::value, std::move(r))
      .then([on_answer](user_answers& a) mutable { on_answer(a); },
            on_error);
}

} // namespace

user_actor::behavior_type user_impl(self_ptr self, user_id user,
                                    user_deps deps) {
  auto& st = self->state;
  st.user = user;
  st.deps = std::move(deps);
  if (st.deps.directory)
    self->delayed_send(self, st.deps.idle, caf::tick_atom::value);
  return {
    [self](sync_atom, user_id who,
           sync_request& req) -> caf::result<sync_page> {
      auto& st = self->state;
      if (who != st.user)
        return caf::make_error(errc::bad_request,
                               "sync of user " + std::to_string(who)
                                 + " sent to the actor of user "
                                 + std::to_string(st.user));
      st.touched = true;
      ++st.in_flight;
      auto rp = self->make_response_promise<sync_page>();
      run(self,
          std::make_shared<store::user_sync>(st.user, std::move(req),
                                             st.deps.partitions),
          rp);
      return rp;
    },
    [self](retire_atom) {
      auto& st = self->state;
      st.closing = true;
      if (st.in_flight == 0)
        self->quit();
    },
    [self](caf::tick_atom) {
      auto& st = self->state;
      if (st.closing || st.retiring)
        return;
      if (!st.touched && st.in_flight == 0) {
        st.retiring = true;
        self->send(st.deps.directory, retire_atom::value, st.user);
        return;
      }
      st.touched = false;
      self->delayed_send(self, st.deps.idle, caf::tick_atom::value);
    },
  };
}

} // namespace parley
