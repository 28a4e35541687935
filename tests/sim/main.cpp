#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  // Roll-backs and restarts are expected here; keep the output to failures.
  spdlog::set_level(spdlog::level::off);
  doctest::Context ctx{argc, argv};
  return ctx.run();
}
