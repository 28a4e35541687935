#include "runtime/store/log_env.hpp"

#include <cerrno>
#include <cstring>
#include <string>
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

bool is_write_ahead_log(const std::string& name) {
  static constexpr std::string_view suffix = ".log";
  return name.size() > suffix.size()
         && name.compare(name.size() - suffix.size(), suffix.size(), suffix)
              == 0;
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

/// A log file: records go at `size_`, over zeros written up to `zeros_`.
class log_file final : public leveldb::WritableFile {
public:
  log_file(std::string name, int fd, size_t chunk)
    : name_(std::move(name)), fd_(fd), chunk_(chunk) {
  }

  ~log_file() override {
    if (fd_ >= 0)
      Close();
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    buf_.append(data.data(), data.size());
    if (buf_.size() >= flush_at)
      return write_buffer();
    return leveldb::Status::OK();
  }

  leveldb::Status Flush() override {
    return write_buffer();
  }

  leveldb::Status Sync() override {
    if (auto st = write_buffer(); !st.ok())
      return st;
    if (::fdatasync(fd_) != 0)
      return io_error(name_, errno);
    return leveldb::Status::OK();
  }

  leveldb::Status Close() override {
    auto st = write_buffer();
    // A cleanly closed log holds exactly its records.
    if (st.ok() && zeros_ > size_
        && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0)
      st = io_error(name_, errno);
    if (::close(fd_) != 0 && st.ok())
      st = io_error(name_, errno);
    fd_ = -1;
    return st;
  }

private:
  static constexpr size_t flush_at = 64 << 10;

  leveldb::Status write_buffer() {
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

  std::string name_;
  int fd_;
  size_t chunk_;
  uint64_t size_ = 0;  ///< bytes of records written
  uint64_t zeros_ = 0; ///< file size: records, then zeros
  std::string buf_;    ///< appended, not yet written
};

class log_env final : public leveldb::EnvWrapper {
public:
  log_env(leveldb::Env* base, size_t chunk, int background_nice)
    : leveldb::EnvWrapper(base),
      chunk_(chunk),
      background_nice_(background_nice) {
  }

  leveldb::Status NewWritableFile(const std::string& name,
                                  leveldb::WritableFile** result) override {
    if (!is_write_ahead_log(name))
      return target()->NewWritableFile(name, result);
    int fd = ::open(name.c_str(), O_TRUNC | O_WRONLY | O_CREAT | O_CLOEXEC,
                    0644);
    if (fd < 0) {
      *result = nullptr;
      return io_error(name, errno);
    }
    *result = new log_file(name, fd, chunk_);
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
};

} // namespace

std::unique_ptr<leveldb::Env> make_log_env(leveldb::Env* base, size_t chunk,
                                           int background_nice) {
  return std::make_unique<log_env>(base, chunk, background_nice);
}

} // namespace parley
