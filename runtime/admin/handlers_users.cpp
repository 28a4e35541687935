#include "runtime/admin/handlers.hpp"

// The user and device commands (issue 23): user show, user create, user
// block, user unblock, user limit, device list, device revoke. Each call
// runs in an actor of its own that asks the accounts actor (which runs
// each step at the owner of the user's partition) and answers once; an
// owner that does not answer in time is a 503 the operator may retry.

#include <chrono>
#include <functional>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/admin/json_text.hpp"
#include "runtime/admin/resolve_user.hpp"
#include "runtime/admin/user_json.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/node.hpp"

namespace parley::admin {

namespace {

using self_ptr = caf::event_based_actor*;

/// A call answers within this (parleyctl waits 10 s): past it, 503.
constexpr auto call_deadline = std::chrono::seconds(8);

/// Answers at most once (a late second answer is dropped), then ends the
/// call's actor (`finish`).
struct once {
  reply_fn reply;
  bool done = false;
  std::function<void()> finish = {};

  void operator()(result r) {
    if (std::exchange(done, true))
      return;
    reply(std::move(r));
    if (finish)
      finish();
  }
};
using once_ptr = std::shared_ptr<once>;

/// A view of the account USER (resolve_user.hpp: a numeric id, else a
/// name), then `then(view)`; errors answered.
template <class Then>
void with_view(self_ptr self, accounts_actor accounts, const std::string& arg,
               once_ptr out, Then then) {
  resolve_user(self, accounts, arg, timeouts::commit,
               [then](account_view& v) { then(v); },
               [out, arg](caf::error& err) {
                 (*out)(error_result(err, "user " + arg));
               });
}

/// Whether each active device of `v` holds a connection (its device actor,
/// at the registry of the user's owner, says so), then `then(online)`; a
/// device that cannot be asked counts as offline.
template <class Then>
void with_online(self_ptr self, device_registry_actor registry,
                 const account_view& v, Then then) {
  struct gather {
    std::map<device_id, bool> online;
    size_t missing = 0;
  };
  auto g = std::make_shared<gather>();
  for (auto& d : v.devices)
    if (!d.revoked)
      g->online[d.device] = false;
  g->missing = g->online.size();
  if (g->missing == 0 || !registry) {
    then(g->online);
    return;
  }
  auto done = [g, then] {
    if (--g->missing == 0)
      then(g->online);
  };
  for (auto& [dev, on] : g->online) {
    auto d = dev;
    self->request(registry, timeouts::ask, caf::get_atom::value, v.user, d)
      .then(
        [self, g, d, done](device_actor& actor) {
          self->request(actor, timeouts::ask, stats_atom::value)
            .then(
              [g, d, done](device_status& s) {
                g->online[d] = s.connected;
                done();
              },
              [done](caf::error&) { done(); });
        },
        [done](caf::error&) { done(); });
  }
}

/// Runs `body(self, accounts, out)` in an actor of its own.
template <class Body>
void run(env& e, reply_fn reply, Body body) {
  auto out = std::make_shared<once>(once{std::move(reply)});
  if (!e.sys || !e.node) {
    (*out)(result{503, "the node is not running"});
    return;
  }
  auto accounts = e.node->accounts();
  e.sys->spawn([out, accounts,
                body](caf::event_based_actor* self) -> caf::behavior {
    out->finish = [self] { self->quit(); };
    body(self, accounts, out);
    self->delayed_send(self, call_deadline, caf::timeout_atom::value);
    return {
      [out](caf::timeout_atom) {
        (*out)(result{503, "no answer in time from the node owning the "
                           "user's partition (a change may still be "
                           "made); retry"});
      },
    };
  });
}

const std::string& arg(const call& c, const char* name) {
  static const std::string none;
  auto i = c.args.find(name);
  return i == c.args.end() ? none : i->second;
}

} // namespace

void add_user_handlers(handler_table& t, env& e) {
  env* ep = &e;
  // user show and device list: the account's view and its devices' online
  // state, rendered two ways.
  auto add_view = [&t, ep](const char* command, auto render) {
    t.add(command, [ep, render](const call& c, reply_fn reply) {
      auto user = arg(c, "user");
      auto registry = ep->node ? ep->node->registry()
                               : device_registry_actor{};
      run(*ep, std::move(reply), [user, registry, render](
                                   self_ptr self, auto accounts,
                                   once_ptr out) {
        with_view(self, accounts, user, out,
                  [self, registry, out, render](const account_view& v) {
                    with_online(self, registry, v,
                                [v, out, render](auto& online) {
                                  (*out)(result{200, render(v, online)});
                                });
                  });
      });
    });
  };
  add_view("user show", [](const account_view& v, const auto& online) {
    return user_json(v, online);
  });
  add_view("device list", [](const account_view& v, const auto& online) {
    return "{\"user_id\":" + std::to_string(v.user) + ",\"devices\":"
           + devices_json(v, online) + "}";
  });
  t.add("user create", [ep](const call& c, reply_fn reply) {
    auto name = arg(c, "name");
    auto password = arg(c, "password");
    bool generated = password.empty();
    if (generated)
      password = credentials::random_secret(18); // 24 characters
    run(*ep, std::move(reply), [=](self_ptr self, auto accounts,
                                   once_ptr out) {
      account_register_step step{name, password, false, true};
      self->request(accounts, timeouts::commit, std::move(step))
        .then(
          [=](user_id id) {
            std::string body = "{\"user_id\":" + std::to_string(id)
                               + ",\"name\":" + json_quote(name);
            if (generated)
              body += ",\"password\":" + json_quote(password);
            (*out)(result{200, body + "}"});
          },
          [out, name](caf::error& err) {
            (*out)(error_result(err, "user " + name));
          });
    });
  });
  for (bool blocked : {true, false}) {
    t.add(blocked ? "user block" : "user unblock",
          [ep, blocked](const call& c, reply_fn reply) {
            auto user = arg(c, "user");
            run(*ep, std::move(reply), [=](self_ptr self, auto accounts,
                                           once_ptr out) {
              with_view(self, accounts, user, out,
                        [=](const account_view& v) {
                          self
                            ->request(accounts, timeouts::commit,
                                      account_block_step{v.user, blocked})
                            .then(
                              [v, out](bool now) {
                                (*out)(result{
                                  200, "{\"user_id\":" + std::to_string(v.user)
                                         + ",\"name\":" + json_quote(v.name)
                                         + ",\"blocked\":"
                                         + (now ? "true" : "false") + "}"});
                              },
                              [out, user](caf::error& err) {
                                (*out)(error_result(err, "user " + user));
                              });
                        });
            });
          });
  }
  t.add("user limit", [ep](const call& c, reply_fn reply) {
    auto user = arg(c, "user");
    auto limit = parse_send_limit(arg(c, "rate"));
    if (!limit) {
      reply(result{400, "rate: N/s, N/min, N/h (N 1-1000000) or off"});
      return;
    }
    run(*ep, std::move(reply), [=](self_ptr self, auto accounts,
                                   once_ptr out) {
      with_view(self, accounts, user, out, [=](const account_view& v) {
        self
          ->request(accounts, timeouts::commit,
                    account_limit_step{v.user, *limit})
          .then(
            [out](account_view& now) {
              (*out)(result{200, "{\"user_id\":" + std::to_string(now.user)
                                   + ",\"name\":" + json_quote(now.name)
                                   + ",\"send_limit\":"
                                   + json_quote(limit_text(now.send)) + "}"});
            },
            [out, user](caf::error& err) {
              (*out)(error_result(err, "user " + user));
            });
      });
    });
  });
  t.add("device revoke", [ep](const call& c, reply_fn reply) {
    auto user = arg(c, "user");
    auto dev = parse_user_id(arg(c, "device")).value_or(0);
    run(*ep, std::move(reply), [=](self_ptr self, auto accounts,
                                   once_ptr out) {
      with_view(self, accounts, user, out, [=](const account_view& v) {
        bool active = false;
        for (auto& d : v.devices)
          active = active || (d.device == dev && !d.revoked);
        if (!active) {
          (*out)(result{404, "user " + v.name + " has no active device "
                               + std::to_string(dev)});
          return;
        }
        self
          ->request(accounts, timeouts::commit,
                    account_revoke_step{v.user, dev})
          .then(
            [v, dev, out](bool) {
              (*out)(result{200, "{\"user_id\":" + std::to_string(v.user)
                                   + ",\"device\":" + std::to_string(dev)
                                   + ",\"revoked\":true}"});
            },
            [out, user, dev](caf::error& err) {
              (*out)(error_result(err, "device " + std::to_string(dev)
                                         + " of user " + user));
            });
      });
    });
  });
}

} // namespace parley::admin
