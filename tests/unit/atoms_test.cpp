#include <doctest/doctest.h>

#include <set>

#include "runtime/core/type_ids.hpp"

TEST_CASE("every parley atom is distinct and none reuses a CAF built-in") {
  std::set<caf::atom_value> builtins{
    caf::add_atom::value,     caf::close_atom::value,
    caf::connect_atom::value, caf::contact_atom::value,
    caf::delete_atom::value,  caf::demonitor_atom::value,
    caf::div_atom::value,     caf::flush_atom::value,
    caf::forward_atom::value, caf::get_atom::value,
    caf::idle_atom::value,    caf::join_atom::value,
    caf::leave_atom::value,   caf::link_atom::value,
    caf::migrate_atom::value, caf::monitor_atom::value,
    caf::mul_atom::value,     caf::ok_atom::value,
    caf::open_atom::value,    caf::pending_atom::value,
    caf::ping_atom::value,    caf::pong_atom::value,
    caf::publish_atom::value, caf::put_atom::value,
    caf::receive_atom::value, caf::redirect_atom::value,
    caf::reset_atom::value,   caf::resolve_atom::value,
    caf::spawn_atom::value,   caf::stream_atom::value,
    caf::sub_atom::value,     caf::subscribe_atom::value,
    caf::sys_atom::value,     caf::tick_atom::value,
    caf::timeout_atom::value, caf::unlink_atom::value,
    caf::update_atom::value,  caf::wait_for_atom::value};
  std::set<caf::atom_value> seen;
  auto atoms = parley::parley_atoms();
  for (auto a : atoms) {
    CAPTURE(to_string(a));
    CHECK(builtins.count(a) == 0);
    CHECK(seen.insert(a).second);
  }
  // Alphabetical, as type_ids.hpp promises.
  for (size_t i = 1; i < atoms.size(); ++i)
    CHECK(to_string(atoms[i - 1]) < to_string(atoms[i]));
}
