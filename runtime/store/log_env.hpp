#pragma once

// A LevelDB Env whose write-ahead logs are written into bytes the file
// already has.
//
// Every synced commit ends in an fdatasync of LevelDB's log. When the
// write appends, the file's size changes, and fdatasync must write the
// inode as well as the data: two dependent disk writes per commit. This
// Env writes zeros ahead of the log's end, a chunk at a time, and puts the
// records over them, so most syncs write only data. (On this project's VM
// disk, a 3 KB write plus fdatasync: ~150 µs instead of ~220 µs.)
//
// Zeros are what LevelDB's log reader already skips: a record header of
// all zeros is its reserved "zero type", made by writers that preallocate,
// and recovery passes over it to the end of the file without reporting a
// loss. A log closed cleanly is cut back to the bytes written.
//
// Only files named `*.log` (the write-ahead logs) are treated so; tables,
// the MANIFEST and LevelDB's own `LOG` go to the wrapped Env unchanged.

#include <cstddef>
#include <memory>

namespace leveldb {
class Env;
} // namespace leveldb

namespace parley {

/// Bytes of zeros written ahead of a log's end at a time.
inline constexpr size_t log_zero_chunk = 256 << 10;

/// An Env forwarding to `base` (not owned; must outlive it) but for
/// write-ahead logs, which it writes over zeros `chunk` bytes at a time.
std::unique_ptr<leveldb::Env> make_log_env(leveldb::Env* base,
                                           size_t chunk = log_zero_chunk);

} // namespace parley
