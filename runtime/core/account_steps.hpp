#pragma once

// The accounts actor's single-partition steps as messages (issue 21, item
// 7; actors/accounts.hpp). A node that gets an account operation runs each
// of its steps itself if it owns the step's partition, else hands the step
// to the owner's accounts actor (its peers table) and carries on with the
// answer: login and block ask the name's owner for the id
// (account_name_step), then the id's owner for the rest
// (account_login_step, account_block_step). A step a node sends to another
// has `forwarded` set; a forwarded step is never forwarded again (two
// nodes whose maps disagree answer errc::unavailable instead of handing a
// request back and forth). Plain values: they cross nodes. The order of
// fields in each `inspect` is the wire format between nodes: append only.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/core/placement.hpp"

namespace parley {

/// Name -> id, in the name's partition. Replies the user id. Error:
/// not_found.
struct account_name_step {
  std::string name;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_name_step& x) {
  return f(caf::meta::type_name("account_name_step"), x.name, x.forwarded);
}

/// Id -> id: checks that `user` exists, in the id's partition. Replies the
/// id. Error: not_found.
struct account_id_step {
  user_id user = 0;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_id_step& x) {
  return f(caf::meta::type_name("account_id_step"), x.user, x.forwarded);
}

/// A registration, in the name's partition. Replies the new user id.
/// `by_operator`: an operator's `user create` (admin port), allowed while
/// registration is closed.
struct account_register_step {
  std::string name;
  std::string password;
  bool forwarded = false;
  bool by_operator = false;
};

template <class Inspector>
typename Inspector::result_type
inspect(Inspector& f, account_register_step& x) {
  return f(caf::meta::type_name("account_register_step"), x.name,
           x.password, x.forwarded, x.by_operator);
}

/// Login's second step, in the id's partition: the password against the
/// account, blocked, the device limit, a new device and token. Replies
/// the login. Errors: unauthenticated, forbidden.
struct account_login_step {
  user_id user = 0;
  std::string password;
  std::string device_name;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_login_step& x) {
  return f(caf::meta::type_name("account_login_step"), x.user, x.password,
           x.device_name, x.forwarded);
}

/// Block's second step, in the id's partition. Replies the new state.
struct account_block_step {
  user_id user = 0;
  bool blocked = false;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_block_step& x) {
  return f(caf::meta::type_name("account_block_step"), x.user, x.blocked,
           x.forwarded);
}

/// The read-receipts setting, in the id's partition. Replies the setting.
struct account_setting_step {
  user_id user = 0;
  bool read_receipts = true;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_setting_step& x) {
  return f(caf::meta::type_name("account_setting_step"), x.user,
           x.read_receipts, x.forwarded);
}

/// Token authentication, in the partition the token names (its user's, or
/// its hash's for a token issued before tokens named their user). Replies
/// the principal; a forwarded one does not make its sender a connection.
struct account_auth_step {
  std::string token;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_auth_step& x) {
  return f(caf::meta::type_name("account_auth_step"), x.token, x.forwarded);
}

/// A user's devices, in the id's partition.
struct account_devices_step {
  user_id user = 0;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_devices_step& x) {
  return f(caf::meta::type_name("account_devices_step"), x.user, x.forwarded);
}

/// The revocation of one of a user's devices, in the id's partition.
/// Replies true. Error: not_found.
struct account_revoke_step {
  user_id user = 0;
  device_id device = 0;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_revoke_step& x) {
  return f(caf::meta::type_name("account_revoke_step"), x.user, x.device,
           x.forwarded);
}

/// What an operator sees of an account (`user show`): its name, whether it
/// is blocked, its own send limit and its devices (with last seen).
struct account_view {
  user_id user = 0;
  std::string name;
  bool blocked = false;
  send_limit send;
  std::vector<device_info> devices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_view& x) {
  return f(caf::meta::type_name("account_view"), x.user, x.name, x.blocked,
           x.send, x.devices);
}

/// Reads the account of `user`, in the id's partition. Replies its
/// account_view. Error: not_found.
struct account_show_step {
  user_id user = 0;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_show_step& x) {
  return f(caf::meta::type_name("account_show_step"), x.user, x.forwarded);
}

/// Sets `user`'s own send limit (count 0: back to the node's default), in
/// the id's partition; the user's connections are told at once. Replies
/// the account_view after the change. Error: not_found.
struct account_limit_step {
  user_id user = 0;
  send_limit send;
  bool forwarded = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_limit_step& x) {
  return f(caf::meta::type_name("account_limit_step"), x.user, x.send,
           x.forwarded);
}

} // namespace parley
