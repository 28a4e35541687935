#include "runtime/store/log_env.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <leveldb/env.h>
#include <spdlog/spdlog.h>

namespace parley {

namespace {

leveldb::Status io_error(const std::string& name, int err) {
  return leveldb::Status::IOError(name, std::strerror(err));
}

/// Writes `n` bytes at `offset`, retrying short writes and interrupts.
bool write_all(int fd, const char* p, size_t n, uint64_t offset) {
  while (n > 0) {
    auto w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return true;
}

/// A file of ours: appends gather in a buffer that a subclass writes out
/// (when it reaches `write_at`, at a sync, at close).
class buffered_file : public leveldb::WritableFile {
public:
  buffered_file(std::string name, int fd, size_t write_at)
    : name_(std::move(name)), fd_(fd), write_at_(write_at) {
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    buf_.append(data.data(), data.size());
    if (buf_.size() >= write_at_)
      return write_out();
    return leveldb::Status::OK();
  }

  leveldb::Status Flush() override {
    return write_out();
  }

  leveldb::Status Sync() override {
    if (auto st = write_out(); !st.ok())
      return st;
    if (::fdatasync(fd_) != 0)
      return io_error(name_, errno);
    return leveldb::Status::OK();
  }

  leveldb::Status Close() override {
    auto st = write_out();
    if (st.ok())
      st = before_close();
    if (::close(fd_) != 0 && st.ok())
      st = io_error(name_, errno);
    fd_ = -1;
    return st;
  }

protected:
  /// Writes `buf_` to the file and clears it.
  virtual leveldb::Status write_out() = 0;

  virtual leveldb::Status before_close() {
    return leveldb::Status::OK();
  }

  std::string name_;
  int fd_;
  size_t write_at_;
  std::string buf_; ///< appended, not yet written
};

/// A log file: records go at `size_`, over zeros written up to `zeros_`.
class log_file final : public buffered_file {
public:
  log_file(std::string name, int fd, size_t chunk)
    : buffered_file(std::move(name), fd, 64 << 10), chunk_(chunk) {
  }

  ~log_file() override {
    if (fd_ >= 0)
      Close();
  }

private:
  leveldb::Status write_out() override {
    if (buf_.empty())
      return leveldb::Status::OK();
    // Zeros first, so the records' own write never grows the file.
    while (zeros_ < size_ + buf_.size()) {
      static const std::vector<char> zeros(log_zero_chunk);
      for (size_t done = 0; done < chunk_;) {
        auto n = std::min(chunk_ - done, zeros.size());
        if (!write_all(fd_, zeros.data(), n, zeros_ + done))
          return io_error(name_, errno);
        done += n;
      }
      zeros_ += chunk_;
    }
    if (!write_all(fd_, buf_.data(), buf_.size(), size_))
      return io_error(name_, errno);
    size_ += buf_.size();
    buf_.clear();
    return leveldb::Status::OK();
  }

  /// A cleanly closed log holds exactly its records.
  leveldb::Status before_close() override {
    if (zeros_ > size_ && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0)
      return io_error(name_, errno);
    return leveldb::Status::OK();
  }

  size_t chunk_;
  uint64_t size_ = 0;  ///< bytes of records written
  uint64_t zeros_ = 0; ///< file size: records, then zeros
};

/// A table written by a flush or compaction: handed to the disk a piece at
/// a time as it is written (sync_file_range starts the write-back at once),
/// at most `bytes_per_s` (0: no pause), so that its final fdatasync has
/// little left and the disk never holds megabytes of it ahead of a
/// commit's sync. Runs on LevelDB's background thread: the pauses hold
/// back only flushes and compactions. The pauses are `env`'s sleeps (a
/// test's Env counts them instead).
class table_file final : public buffered_file {
public:
  table_file(std::string name, int fd, double bytes_per_s, leveldb::Env* env)
    : buffered_file(std::move(name), fd, table_piece),
      rate_(bytes_per_s),
      env_(env) {
  }

  ~table_file() override {
    if (fd_ >= 0)
      Close();
  }

  leveldb::Status Flush() override {
    return leveldb::Status::OK(); // pieces leave as they fill
  }

private:
  leveldb::Status write_out() override {
    if (buf_.empty())
      return leveldb::Status::OK();
    if (!write_all(fd_, buf_.data(), buf_.size(), size_))
      return io_error(name_, errno);
    // Best effort: without it the bytes still go out at the Sync.
    ::sync_file_range(fd_, static_cast<off_t>(size_),
                      static_cast<off_t>(buf_.size()),
                      SYNC_FILE_RANGE_WRITE);
    size_ += buf_.size();
    if (rate_ > 0)
      env_->SleepForMicroseconds(
        static_cast<int>(double(buf_.size()) * 1e6 / rate_));
    buf_.clear();
    return leveldb::Status::OK();
  }

  double rate_;
  leveldb::Env* env_;
  uint64_t size_ = 0;
};

bool has_suffix(const std::string& name, std::string_view suffix) {
  return name.size() > suffix.size()
         && name.compare(name.size() - suffix.size(), suffix.size(), suffix)
              == 0;
}

class log_env final : public leveldb::EnvWrapper {
public:
  log_env(leveldb::Env* base, size_t chunk, int background_nice,
          double table_rate)
    : leveldb::EnvWrapper(base),
      chunk_(chunk),
      background_nice_(background_nice),
      table_rate_(table_rate) {
  }

  leveldb::Status NewWritableFile(const std::string& name,
                                  leveldb::WritableFile** result) override {
    bool log = has_suffix(name, ".log"); // write-ahead logs
    if (!log && !has_suffix(name, ".ldb"))
      return target()->NewWritableFile(name, result);
    int fd = ::open(name.c_str(), O_TRUNC | O_WRONLY | O_CREAT | O_CLOEXEC,
                    0644);
    if (fd < 0) {
      *result = nullptr;
      return io_error(name, errno);
    }
    if (log)
      *result = new log_file(name, fd, chunk_);
    else
      *result = new table_file(name, fd, table_rate_, target());
    return leveldb::Status::OK();
  }

  void Schedule(void (*function)(void*), void* arg) override {
    target()->Schedule(&background_job::run,
                       new background_job{function, arg, background_nice_});
  }

private:
  /// LevelDB's flushes and compactions, run on its one background thread.
  struct background_job {
    void (*function)(void*);
    void* arg;
    int nice;

    static void run(void* p) {
      std::unique_ptr<background_job> job{static_cast<background_job*>(p)};
      // The thread is LevelDB's (one for the process, started by the
      // first job): lowered once, by its first job.
      thread_local bool lowered = false;
      if (!lowered) {
        lowered = true;
        if (job->nice != 0
            && ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()),
                             job->nice)
                 != 0)
          spdlog::warn("cannot lower the priority of LevelDB's background "
                       "thread nice={} error=\"{}\"",
                       job->nice, std::strerror(errno));
      }
      job->function(job->arg);
    }
  };

  size_t chunk_;
  int background_nice_;
  double table_rate_;
};

} // namespace

std::unique_ptr<leveldb::Env> make_log_env(leveldb::Env* base, size_t chunk,
                                           int background_nice,
                                           double table_bytes_per_s) {
  return std::make_unique<log_env>(base, chunk, background_nice,
                                   table_bytes_per_s);
}

} // namespace parley
