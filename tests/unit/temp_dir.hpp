#pragma once

// An empty directory of its own for one test, removed with everything in
// it when the test ends.

#include <filesystem>
#include <string>

#include <unistd.h>

namespace parley::test {

struct temp_dir {
  std::filesystem::path path;

  temp_dir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path()
           / ("parley-unit-" + std::to_string(::getpid()) + "-"
              + std::to_string(n++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }

  ~temp_dir() {
    std::filesystem::remove_all(path);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

} // namespace parley::test
