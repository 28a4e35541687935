// The accounts actor under the test coordinator: registration, logins,
// token authentication, revocation (which closes authenticated
// connections) and the refusals, all with a real (minimum-cost) Argon2id.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/accounts.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "accounts_fixture.hpp"

using namespace parley;

namespace {

struct fixture : sim::accounts_fixture<> {
  explicit fixture(accounts_limits lim = {}) {
    start(lim);
  }
};

} // namespace

TEST_CASE("sim: accounts register once, log devices in and authenticate "
          "their tokens") {
  fixture f;
  auto alice = f.ask<user_id>(register_atom::value, std::string{"alice"},
                              std::string{"correct horse"});
  REQUIRE(alice.first);
  auto again = f.ask<user_id>(register_atom::value, std::string{"alice"},
                              std::string{"other password"});
  CHECK(is(again.second, errc::conflict));
  auto bob = f.ask<user_id>(register_atom::value, std::string{"bob"},
                            std::string{"hunter2hunter2"});
  REQUIRE(bob.first);
  CHECK(*bob.first != *alice.first);
  // Bad input is refused, nothing is created.
  for (std::string name : {std::string{}, std::string{"ab"},
                           std::string{"UPPER"}, std::string{"white space"},
                           std::string(33, 'a')})
    CHECK(is(f.ask<user_id>(register_atom::value, name,
                            std::string{"long enough"})
               .second,
             errc::bad_request));
  CHECK(is(f.ask<user_id>(register_atom::value, std::string{"carol"},
                          std::string{"short"})
             .second,
           errc::bad_request));
  // The password is stored hashed, never as given.
  auto rec = f.disk->get(keys::user_account(*alice.first));
  REQUIRE(rec);
  REQUIRE(*rec);
  CHECK((*rec)->find("correct horse") == std::string::npos);
  CHECK((*rec)->find("$argon2id$") != std::string::npos);

  auto wrong = f.ask<login_result>(login_atom::value, std::string{"alice"},
                                   std::string{"wrong"}, std::string{"phone"});
  CHECK(is(wrong.second, errc::unauthenticated));
  auto nobody = f.ask<login_result>(login_atom::value, std::string{"zed"},
                                    std::string{"whatever1"},
                                    std::string{"phone"});
  CHECK(is(nobody.second, errc::unauthenticated));
  auto phone = f.ask<login_result>(login_atom::value, std::string{"alice"},
                                   std::string{"correct horse"},
                                   std::string{"phone"});
  REQUIRE(phone.first);
  CHECK(phone.first->user == *alice.first);
  CHECK(phone.first->token.size() >= 43);
  auto laptop = f.ask<login_result>(login_atom::value, std::string{"alice"},
                                    std::string{"correct horse"},
                                    std::string{"laptop"});
  REQUIRE(laptop.first);
  CHECK(laptop.first->device != phone.first->device);
  // Tokens are stored only as hashes.
  CHECK_FALSE(*f.disk->get(keys::token(phone.first->token)));

  auto who = f.ask<principal>(auth_atom::value, phone.first->token);
  REQUIRE(who.first);
  CHECK(who.first->user == *alice.first);
  CHECK(who.first->device == phone.first->device);
  CHECK(is(f.ask<principal>(auth_atom::value, std::string{"forged-token"})
             .second,
           errc::unauthenticated));
  auto id = f.ask<user_id>(caf::resolve_atom::value, std::string{"bob"});
  REQUIRE(id.first);
  CHECK(*id.first == *bob.first);
}

TEST_CASE("sim: revoking a device refuses its token and closes its "
          "connections") {
  fixture f;
  REQUIRE(f.ask<user_id>(register_atom::value, std::string{"alice"},
                         std::string{"correct horse"})
            .first);
  auto phone = f.ask<login_result>(login_atom::value, std::string{"alice"},
                                   std::string{"correct horse"},
                                   std::string{"phone"})
                 .first;
  REQUIRE(phone);
  // A stand-in connection authenticates and waits to be closed.
  auto closed = std::make_shared<std::string>();
  auto acc = f.accounts;
  auto token = phone->token;
  // Held here as the WebSocket session holds a real connection actor.
  auto conn = f.sys->spawn([=](caf::event_based_actor* self) -> caf::behavior {
    self->request(acc, caf::infinite, auth_atom::value, token)
      .then([](principal&) {});
    return {[=](caf::close_atom, uint32_t code, std::string& why) {
      *closed = std::to_string(code) + " " + why;
      self->quit();
    }};
  });
  f.sched->run();
  auto ok = f.ask<bool>(revoke_atom::value, phone->user, phone->device);
  REQUIRE(ok.first);
  CHECK(*closed == "4004 device revoked");
  CHECK(is(f.ask<principal>(auth_atom::value, phone->token).second,
           errc::unauthenticated));
  auto list = f.ask<std::vector<device_info>>(devices_atom::value,
                                              phone->user);
  REQUIRE(list.first);
  REQUIRE(list.first->size() == 1);
  CHECK(list.first->front().revoked);
  CHECK(is(f.ask<bool>(revoke_atom::value, phone->user, phone->device).second,
           errc::not_found));
}

TEST_CASE("sim: the device limit and closed registration are enforced") {
  accounts_limits lim;
  lim.max_devices = 2;
  fixture f{lim};
  REQUIRE(f.ask<user_id>(register_atom::value, std::string{"alice"},
                         std::string{"correct horse"})
            .first);
  for (int i = 0; i < 2; ++i)
    REQUIRE(f.ask<login_result>(login_atom::value, std::string{"alice"},
                                std::string{"correct horse"},
                                std::string{"d"} + std::to_string(i))
              .first);
  CHECK(is(f.ask<login_result>(login_atom::value, std::string{"alice"},
                               std::string{"correct horse"},
                               std::string{"third"})
             .second,
           errc::forbidden));
  accounts_limits closed;
  closed.registration_open = false;
  fixture g{closed};
  CHECK(is(g.ask<user_id>(register_atom::value, std::string{"alice"},
                          std::string{"correct horse"})
             .second,
           errc::forbidden));
}
