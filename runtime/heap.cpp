#include "runtime/heap.hpp"

#include <cstdint>
#include <new>

#include <sys/mman.h>
#include <unistd.h>

#include <gperftools/malloc_extension.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 // Linux 5.14; older kernels refuse it
#endif

namespace parley {

namespace {

/// tcmalloc's system allocator, as its own mmap allocator but with the
/// pages mapped in before they are handed over. Called with tcmalloc's
/// page heap lock held: it must not allocate.
class populating_allocator final : public SysAllocator {
public:
  populating_allocator(SysAllocator* fallback, size_t populate_limit)
    : fallback_(fallback), populate_limit_(populate_limit) {
  }

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    const size_t page = static_cast<size_t>(getpagesize());
    if (alignment < page)
      alignment = page;
    size_t aligned = (size + alignment - 1) / alignment * alignment;
    if (aligned < size) // overflow
      return nullptr;
    size_t extra = alignment - page; // room to move to the alignment
    void* p = mmap(nullptr, aligned + extra, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return fallback_ ? fallback_->Alloc(size, actual_size, alignment)
                       : nullptr;
    auto start = reinterpret_cast<uintptr_t>(p);
    size_t head = (alignment - start % alignment) % alignment;
    if (head > 0)
      munmap(p, head);
    if (extra > head)
      munmap(reinterpret_cast<void*>(start + head + aligned), extra - head);
    auto* mem = reinterpret_cast<void*>(start + head);
    // Best effort: if the kernel refuses, the pages fault in on first
    // touch, as they would have.
    if (aligned <= populate_limit_)
      madvise(mem, aligned, MADV_POPULATE_WRITE);
    if (actual_size)
      *actual_size = aligned;
    return mem;
  }

private:
  SysAllocator* fallback_;
  size_t populate_limit_;
};

} // namespace

bool use_populated_heap(size_t populate_limit) {
  auto* ext = MallocExtension::instance();
  auto* current = ext->GetSystemAllocator();
  if (current == nullptr)
    return false; // not tcmalloc
  // Never destroyed: tcmalloc may grow its heap until the very end.
  alignas(populating_allocator) static unsigned char storage[sizeof(
    populating_allocator)];
  auto* mine = new (storage) populating_allocator(current, populate_limit);
  ext->SetSystemAllocator(mine);
  return true;
}

} // namespace parley
