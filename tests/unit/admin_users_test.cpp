// The user commands' pieces without actors (issue 23): rates as typed and
// shown, the HTTP status of each accounts error, the JSON rows, and the
// two tables they read (runtime/store/account_store.hpp): a user's own
// send limit ('l') and a device's last seen ('w', max-merged), both in the
// user's partition.

#include <doctest/doctest.h>

#include <caf/sec.hpp>

#include "runtime/admin/user_json.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"

using namespace parley;
using namespace parley::admin;

TEST_CASE("send limits parse as typed and print back the same") {
  for (std::string text : {"50/s", "10/min", "3/h", "1000000/s"}) {
    auto l = parse_send_limit(text);
    REQUIRE(l);
    CHECK_FALSE(l->is_default());
    CHECK(limit_text(*l) == text);
  }
  CHECK(parse_send_limit("2/s")->period_ms == 1000);
  CHECK(parse_send_limit("2/min")->period_ms == 60000);
  auto off = parse_send_limit("off");
  REQUIRE(off);
  CHECK(off->is_default());
  CHECK(limit_text(*off) == "default");
  for (std::string bad : {"0/s", "1000001/s", "5/d", "5", "/s", "-1/s",
                          "five/s", ""})
    CHECK_FALSE(parse_send_limit(bad));
  CHECK(parse_user_id("42") == 42u);
  CHECK_FALSE(parse_user_id("0"));
  CHECK_FALSE(parse_user_id("alice"));
  CHECK_FALSE(parse_user_id("9223372036854775808")); // 2^63
}

TEST_CASE("accounts errors become HTTP statuses with the actor's words") {
  auto st = [](caf::error e) { return error_result(e, "user x").status; };
  CHECK(st(caf::make_error(errc::not_found, "no such user: x")) == 404);
  CHECK(error_result(caf::make_error(errc::not_found, "no such user: x"),
                     "user x")
          .body
        == "no such user: x");
  CHECK(st(caf::make_error(errc::conflict, "username taken")) == 409);
  CHECK(st(caf::make_error(errc::bad_request, "username: 3-32")) == 400);
  CHECK(st(caf::make_error(errc::forbidden, "registration is closed"))
        == 403);
  CHECK(st(caf::make_error(errc::unavailable, "partition 3")) == 503);
  CHECK(st(caf::make_error(caf::sec::request_timeout)) == 503);
  CHECK(error_result(caf::make_error(caf::sec::request_timeout), "user x")
          .body.find("retry")
        != std::string::npos);
  CHECK(st(caf::make_error(errc::storage_corrupt, "bad record")) == 500);
}

TEST_CASE("user show's JSON: a row per device, revoked ones never online") {
  account_view v;
  v.user = 7;
  v.name = "gus \"g\"";
  v.send = send_limit{50, 1000};
  v.devices.push_back(device_info{1, "phone", 100, false, 250});
  v.devices.push_back(device_info{2, "old", 90, true, 95});
  auto js = user_json(v, {{1, true}, {2, true}});
  CHECK(js
        == R"({"user_id":7,"name":"gus \"g\"","blocked":false,)"
           R"("send_limit":"50/s","devices":[)"
           R"({"device":1,"name":"phone","created_ms":100,)"
           R"("last_seen_ms":250,"online":true,"revoked":false},)"
           R"({"device":2,"name":"old","created_ms":90,)"
           R"("last_seen_ms":95,"online":false,"revoked":true}]})");
  CHECK(devices_json(account_view{}, {}) == "[]");
}

TEST_CASE("a user's send limit and devices' last seen are kept in the "
          "user's partition") {
  memory_backend kv;
  user_id u = 12345;
  CHECK(keys::slot_of_key(keys::user_limits(u)) == keys::user_slot(u));
  CHECK(keys::slot_of_key(keys::last_seen(u, 3)) == keys::user_slot(u));
  CHECK(keys::table_of(keys::user_limits(u)) == keys::user_limits_tag);
  CHECK(keys::table_of(keys::last_seen(u, 3)) == keys::last_seen_tag);
  // None set: the default.
  auto l = store::find_send_limit(kv, u);
  REQUIRE(l);
  CHECK(l->is_default());
  write_batch b;
  store::set_send_limit(b, u, send_limit{2, 1000});
  store::add_last_seen(b, u, 3, 5000);
  store::add_last_seen(b, u + 1, 1, 9000); // another user's
  REQUIRE_FALSE(kv.write(b, true));
  l = store::find_send_limit(kv, u);
  REQUIRE(l);
  CHECK(l->count == 2);
  CHECK(l->period_ms == 1000);
  // Last seen never moves back: a max-merged op (the store writer keeps
  // the larger of it and the stored value).
  for (auto& op : b.ops)
    CHECK(op.max_u64 == (keys::table_of(op.key) == keys::last_seen_tag));
  write_batch more;
  store::add_last_seen(more, u, 4, 4500);
  REQUIRE_FALSE(kv.write(more, true));
  auto seen = store::last_seen(kv, u);
  REQUIRE(seen);
  CHECK(seen->size() == 2);
  CHECK(seen->at(3) == 5000);
  CHECK(seen->at(4) == 4500);
  // off: erased, the default again.
  write_batch off;
  store::set_send_limit(off, u, send_limit{});
  REQUIRE_FALSE(kv.write(off, true));
  CHECK(store::find_send_limit(kv, u)->is_default());
}
