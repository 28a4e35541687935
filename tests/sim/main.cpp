#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  // Roll-backs and restarts are expected here; keep the output to failures.
  // PARLEY_SIM_LOG=debug (or info, warn, ...) shows the server's log when
  // replaying a seed.
  auto level = std::getenv("PARLEY_SIM_LOG");
  spdlog::set_level(level ? spdlog::level::from_str(level)
                          : spdlog::level::off);
  doctest::Context ctx{argc, argv};
  return ctx.run();
}
