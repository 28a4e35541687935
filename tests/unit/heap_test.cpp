// runtime/heap.hpp, in its own program: it needs tcmalloc, and a heap that
// earlier tests have not grown already.

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstdint>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "runtime/heap.hpp"

namespace {

/// Pages of [p, p + n) (rounded inward to whole pages) the kernel has
/// mapped in, without touching them.
size_t resident_pages(void* p, size_t n) {
  const auto page = static_cast<uintptr_t>(getpagesize());
  auto lo = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  auto hi = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  std::vector<unsigned char> in((hi - lo) / page);
  REQUIRE(mincore(reinterpret_cast<void*>(lo), hi - lo, in.data()) == 0);
  size_t count = 0;
  for (auto c : in)
    count += c & 1;
  return count;
}

} // namespace

TEST_CASE("memory tcmalloc takes from the kernel is mapped in before it is "
          "touched, up to the limit") {
  const size_t limit = size_t{8} << 20;
  REQUIRE(parley::use_populated_heap(limit));
  const auto page = static_cast<size_t>(getpagesize());
  // Larger than any free span this young heap has: a new chunk from the
  // kernel, and never touched here (malloc, not calloc or new).
  const size_t small = size_t{4} << 20;
  void* a = std::malloc(small);
  REQUIRE(a != nullptr);
  auto pages = small / page - 1;
  CHECK(resident_pages(a, small) >= pages);
  // Over the limit: mapped lazily, as without this.
  const size_t big = size_t{64} << 20;
  void* b = std::malloc(big);
  REQUIRE(b != nullptr);
  CHECK(resident_pages(b, big) < big / page / 2);
  std::free(b);
  std::free(a);
}
