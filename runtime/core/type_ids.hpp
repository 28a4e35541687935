#pragma once

// The one CAF type-id block of Parley: every message struct and atom.
// Register with `cfg.add_message_types<caf::id_block::parley>()`.
// Atoms: `<verb>_atom`, alphabetical, at most 10 characters, never the text
// of a CAF built-in (tests/unit/atoms_test.cpp checks they are distinct).

#include <cstdint>
#include <vector>

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "runtime/core/account_steps.hpp"
#include "runtime/core/inbox_rows.hpp"
#include "runtime/core/lease_state.hpp"
#include "runtime/core/messages.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/core/sync_reads.hpp"
#include "runtime/core/tagged_messages.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(parley, caf::first_custom_type_id)

  CAF_ADD_TYPE_ID(parley, (parley::account_name_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_register_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_login_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_block_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_setting_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_auth_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_devices_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_revoke_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_id_step))
  CAF_ADD_TYPE_ID(parley, (parley::conversation_snapshot))
  CAF_ADD_TYPE_ID(parley, (parley::device_info))
  CAF_ADD_TYPE_ID(parley, (parley::device_status))
  CAF_ADD_TYPE_ID(parley, (parley::group_change))
  CAF_ADD_TYPE_ID(parley, (parley::group_info))
  CAF_ADD_TYPE_ID(parley, (parley::login_result))
  CAF_ADD_TYPE_ID(parley, (parley::principal))
  CAF_ADD_TYPE_ID(parley, (parley::projection_batch))
  CAF_ADD_TYPE_ID(parley, (parley::projection_event))
  CAF_ADD_TYPE_ID(parley, (std::vector<parley::device_info>))
  CAF_ADD_TYPE_ID(parley, (parley::conversation_status))
  CAF_ADD_TYPE_ID(parley, (parley::idempotency_hit))
  CAF_ADD_TYPE_ID(parley, (parley::idempotency_key))
  CAF_ADD_TYPE_ID(parley, (parley::inbox_entry))
  CAF_ADD_TYPE_ID(parley, (std::vector<parley::inbox_entry>))
  CAF_ADD_TYPE_ID(parley, (parley::idempotency_sweep))
  CAF_ADD_TYPE_ID(parley, (parley::kv_op))
  CAF_ADD_TYPE_ID(parley, (parley::member))
  CAF_ADD_TYPE_ID(parley, (parley::receipt_cursor))
  CAF_ADD_TYPE_ID(parley, (parley::receipt_event))
  CAF_ADD_TYPE_ID(parley, (parley::send_request))
  CAF_ADD_TYPE_ID(parley, (parley::send_result))
  CAF_ADD_TYPE_ID(parley, (parley::stored_message))
  CAF_ADD_TYPE_ID(parley, (parley::sync_page))
  CAF_ADD_TYPE_ID(parley, (parley::sync_request))
  CAF_ADD_TYPE_ID(parley, (parley::write_batch))
  CAF_ADD_TYPE_ID(parley, (parley::writer_stats))
  CAF_ADD_TYPE_ID(parley, (std::vector<parley::stored_message>))
  CAF_ADD_TYPE_ID(parley, (std::vector<uint64_t>))
  CAF_ADD_TYPE_ID(parley, (parley::partition_map))
  CAF_ADD_TYPE_ID(parley, (parley::placement_key))
  CAF_ADD_TYPE_ID(parley, (parley::route))
  CAF_ADD_TYPE_ID(parley, (parley::conv_reads))
  CAF_ADD_TYPE_ID(parley, (parley::conv_answers))
  CAF_ADD_TYPE_ID(parley, (parley::user_reads))
  CAF_ADD_TYPE_ID(parley, (parley::user_answers))
  CAF_ADD_TYPE_ID(parley, (parley::tagged_send))
  CAF_ADD_TYPE_ID(parley, (parley::send_answer))
  CAF_ADD_TYPE_ID(parley, (parley::tagged_receipt))
  CAF_ADD_TYPE_ID(parley, (parley::receipt_answer))
  CAF_ADD_TYPE_ID(parley, (parley::tagged_commit))
  CAF_ADD_TYPE_ID(parley, (parley::commit_answer))
  CAF_ADD_TYPE_ID(parley, (parley::membership_event))
  CAF_ADD_TYPE_ID(parley, (parley::inbox_rows))
  CAF_ADD_TYPE_ID(parley, (parley::inbox_query))
  CAF_ADD_TYPE_ID(parley, (parley::lease_state))
  CAF_ADD_TYPE_ID(parley, (parley::send_limit))
  CAF_ADD_TYPE_ID(parley, (parley::account_view))
  CAF_ADD_TYPE_ID(parley, (parley::account_show_step))
  CAF_ADD_TYPE_ID(parley, (parley::account_limit_step))

  CAF_ADD_ATOM(parley, parley, ack_atom, "ack")
  CAF_ADD_ATOM(parley, parley, auth_atom, "auth")
  CAF_ADD_ATOM(parley, parley, block_atom, "block")
  CAF_ADD_ATOM(parley, parley, commit_atom, "commit")
  CAF_ADD_ATOM(parley, parley, deliver_atom, "deliver")
  CAF_ADD_ATOM(parley, parley, devices_atom, "devices")
  CAF_ADD_ATOM(parley, parley, expire_atom, "expire")
  CAF_ADD_ATOM(parley, parley, fanout_atom, "fanout")
  CAF_ADD_ATOM(parley, parley, fetch_atom, "fetch")
  CAF_ADD_ATOM(parley, parley, frame_atom, "frame")
  CAF_ADD_ATOM(parley, parley, group_atom, "group")
  CAF_ADD_ATOM(parley, parley, load_atom, "load")
  CAF_ADD_ATOM(parley, parley, login_atom, "login")
  CAF_ADD_ATOM(parley, parley, lookup_atom, "lookup")
  CAF_ADD_ATOM(parley, parley, outbox_atom, "outbox")
  CAF_ADD_ATOM(parley, parley, rebuild_atom, "rebuild")
  CAF_ADD_ATOM(parley, parley, receipt_atom, "receipt")
  CAF_ADD_ATOM(parley, parley, refresh_atom, "refresh")
  CAF_ADD_ATOM(parley, parley, register_atom, "register")
  CAF_ADD_ATOM(parley, parley, retire_atom, "retire")
  CAF_ADD_ATOM(parley, parley, revoke_atom, "revoke")
  CAF_ADD_ATOM(parley, parley, send_atom, "send")
  CAF_ADD_ATOM(parley, parley, stats_atom, "stats")
  CAF_ADD_ATOM(parley, parley, sweep_atom, "sweep")
  CAF_ADD_ATOM(parley, parley, sync_atom, "sync")

CAF_END_TYPE_ID_BLOCK(parley)

namespace parley {

/// Every atom text Parley defines, in the order above (for the unit test).
inline std::vector<caf::atom_value> parley_atoms() {
  return {ack_atom::value,      auth_atom::value,   block_atom::value,
          commit_atom::value,
          deliver_atom::value,  devices_atom::value, expire_atom::value,
          fanout_atom::value,
          fetch_atom::value,
          frame_atom::value,    group_atom::value,  load_atom::value,   login_atom::value,
          lookup_atom::value,   outbox_atom::value, rebuild_atom::value,
          receipt_atom::value,
          refresh_atom::value,
          register_atom::value, retire_atom::value, revoke_atom::value,
          send_atom::value,     stats_atom::value,  sweep_atom::value,
          sync_atom::value};
}

} // namespace parley
