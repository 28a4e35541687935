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
// Only files named `*.log` (the write-ahead logs) are treated so; tables
// are paced (below); the MANIFEST and LevelDB's own `LOG` go to the wrapped
// Env unchanged.
//
// Tables (`*.ldb`, written by flushes and compactions) go to the disk a
// piece at a time as they are written, at most `table_bytes_per_s`. Written
// at full speed and synced at their end, a flush's 10 MB reached the disk
// in one burst, and the commits' syncs queued behind it: 3-16 ms each, and
// 500-3,000 messages over 10 ms around every flush (RESULTS, issue 3).
//
// It also runs LevelDB's background thread (memtable flushes and
// compactions) at a lower CPU priority. A flush takes ~30 ms of a core and
// an L0 -> L1 compaction 100-400 ms; at the default priority they took a
// core from the threads that carry messages, and most 100 ms slots with a
// message over 10 ms lined up with one (RESULTS, issue 3). At nice 19 they
// use the time those threads leave; LevelDB's own write slowdown at 8
// level-0 files still holds writers back if compactions fall behind.

#include <cstddef>
#include <memory>

namespace leveldb {
class Env;
} // namespace leveldb

namespace parley {

/// Bytes of zeros written ahead of a log's end at a time.
inline constexpr size_t log_zero_chunk = 256 << 10;

/// Bytes of a table handed to the disk at a time.
inline constexpr size_t table_piece = 256 << 10;

/// Default pace of table writes, bytes per second. Far above what the
/// tables of a node at full load need (a few MB/s), far below the disk's
/// own speed.
inline constexpr double default_table_write_rate = 32e6;

/// LevelDB's background thread runs at this nice value by default.
inline constexpr int default_compaction_nice = 19;

/// An Env forwarding to `base` (not owned; must outlive it) but for
/// write-ahead logs, which it writes over zeros `chunk` (> 0) bytes at a
/// time, for tables, which it writes a piece at a time at most
/// `table_bytes_per_s` (0: unpaced; the pauses are `base`'s
/// SleepForMicroseconds), and for background jobs, whose thread
/// it sets to `background_nice` (0: left as it is).
std::unique_ptr<leveldb::Env>
make_log_env(leveldb::Env* base, size_t chunk = log_zero_chunk,
             int background_nice = default_compaction_nice,
             double table_bytes_per_s = default_table_write_rate);

} // namespace parley
