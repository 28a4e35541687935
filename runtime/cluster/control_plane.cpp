#include "runtime/cluster/control_plane.hpp"

namespace parley::cluster {

const char* to_string(cp_errc x) {
  switch (x) {
    case cp_errc::unreachable:
      return "unreachable";
    case cp_errc::timeout:
      return "timeout";
    case cp_errc::closed:
      return "closed";
    case cp_errc::http:
      return "http";
    case cp_errc::bad_answer:
      return "bad_answer";
    case cp_errc::lease_gone:
      return "lease_gone";
    case cp_errc::server:
      return "server";
    case cp_errc::compacted:
      return "compacted";
  }
  return "unknown";
}

std::string prefix_range_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0'); // every key
}

} // namespace parley::cluster
