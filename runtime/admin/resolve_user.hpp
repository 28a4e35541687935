#pragma once

// resolve_user: how every admin command reads its USER argument (user
// show/block/limit, device *, inbox rebuild): digits that are an account's
// id name that account; anything else, and digits that are no account's
// id, are a name. So an account named "42" is reached by name only while
// no account has id 42, and every command picks the same account.

#include <string>
#include <utility>

#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "runtime/admin/user_json.hpp"
#include "runtime/core/errors.hpp"

namespace parley::admin {

/// Finds the account `arg` names (see above) by asking `accounts` from
/// `self` (each question within `within`), then calls
/// `found(account_view&)`, or `failed(caf::error&)` (not_found if it
/// names nobody). Takes actor handles only: safe in an actor that runs
/// after the handler returned.
template <class Found, class Failed>
void resolve_user(caf::event_based_actor* self, accounts_actor accounts,
                  const std::string& arg, caf::timespan within, Found found,
                  Failed failed) {
  auto by_name = [self, accounts, arg, within, found, failed] {
    self->request(accounts, within, caf::resolve_atom::value, arg)
      .then(
        [self, accounts, within, found, failed](user_id id) {
          self->request(accounts, within, account_show_step{id})
            .then([found](account_view& v) { found(v); },
                  [failed](caf::error& err) { failed(err); });
        },
        [failed](caf::error& err) { failed(err); });
  };
  auto id = parse_user_id(arg);
  if (!id) {
    by_name();
    return;
  }
  self->request(accounts, within, account_show_step{*id})
    .then([found](account_view& v) { found(v); },
          [failed, by_name](caf::error& err) {
            if (is(err, errc::not_found))
              by_name();
            else
              failed(err);
          });
}

} // namespace parley::admin
