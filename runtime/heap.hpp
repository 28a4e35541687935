#pragma once

// Memory for tcmalloc's heap, mapped in when it is taken from the kernel.
//
// On the VMs Parley is measured on (PVM guests), a page fault costs about
// 11 µs, where mapping the same page in ahead (MADV_POPULATE_WRITE) costs
// about 0.7 µs. A node grows its heap in bursts: when the 100 busiest
// conversations' send-key tables double at once, 2,000 faults in 0.1 s
// held the workers for 20-30 ms (tools/bench/RESULTS.md, issue 3). With
// this, tcmalloc asks the kernel for pages that are already there, one
// system call per chunk instead of one fault per page. The call runs under
// tcmalloc's page heap lock, on the thread that needed the memory (~0.2 ms
// for a 1 MiB chunk, the usual size); the faults it replaces came on that
// thread too, each dearer.
//
// Kept apart from the runtime library: only the programs link tcmalloc.

#include <cstddef>

namespace parley {

/// Makes tcmalloc map each chunk it takes from the kernel (up to
/// `populate_limit` bytes of it; larger requests are mapped lazily, as
/// before) in one call. Call it once, early in main. Returns false if the
/// malloc in use has no pluggable system allocator (nothing changes then).
bool use_populated_heap(size_t populate_limit = size_t{16} << 20);

} // namespace parley
