#include "bench_net.hpp"

#include <utility> // Asio in Boost 1.74 needs it first

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace parley::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string http_call(http::verb verb, const std::string& host, uint16_t port,
                      const std::string& target, const std::string& body) {
  asio::io_context ioc;
  tcp::socket s{ioc};
  s.connect({asio::ip::make_address(host), port});
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, host);
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return res.body();
}

} // namespace

std::string http_post(const std::string& host, uint16_t port,
                      const std::string& target, const std::string& body) {
  return http_call(http::verb::post, host, port, target, body);
}

std::string http_get(const std::string& host, uint16_t port,
                     const std::string& target) {
  return http_call(http::verb::get, host, port, target, {});
}

std::string json_value(const std::string& json, const std::string& key) {
  auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos)
    return {};
  at += key.size() + 3;
  if (at < json.size() && json[at] == '"') {
    auto end = json.find('"', at + 1);
    return end == std::string::npos ? std::string{}
                                    : json.substr(at + 1, end - at - 1);
  }
  auto end = json.find_first_of(",}", at);
  return json.substr(at, end == std::string::npos ? end : end - at);
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

double self_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec
         + ru.ru_stime.tv_usec / 1e6;
}

double proc_cpu(int64_t pid) {
  if (pid <= 0)
    return -1;
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string all((std::istreambuf_iterator<char>(in)), {});
  auto close = all.rfind(')');
  if (close == std::string::npos)
    return -1;
  std::istringstream is{all.substr(close + 2)};
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && is >> field; ++i) {
    if (i == 14)
      utime = std::stod(field);
    if (i == 15)
      stime = std::stod(field);
  }
  return (utime + stime) / sysconf(_SC_CLK_TCK);
}

std::vector<uint64_t> register_all(const std::string& host, uint16_t port,
                                   const std::vector<std::string>& names) {
  std::vector<uint64_t> ids(names.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < names.size() && !failed;) {
        auto body = http_post(host, port, "/v1/accounts",
                              R"({"username":")" + names[i]
                                + R"(","password":"bench password"})");
        auto id = json_value(body, "userId");
        if (id.empty()) {
          std::fprintf(stderr, "parley-bench: sign-up failed: %s\n",
                       body.c_str());
          failed = true;
          return;
        }
        ids[i] = std::stoull(id);
      }
    });
  for (auto& t : threads)
    t.join();
  if (failed)
    throw std::runtime_error("sign-ups failed (is the server running with "
                             "--parley.no-rate-limits?)");
  return ids;
}

std::vector<std::string> login_all(const std::string& host, uint16_t port,
                                   const std::vector<std::string>& names) {
  std::vector<std::string> tokens(names.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < names.size();)
        tokens[i] = json_value(
          http_post(host, port, "/v1/login",
                    R"({"username":")" + names[i]
                      + R"(","password":"bench password","deviceName":"b"})"),
          "token");
    });
  for (auto& t : threads)
    t.join();
  for (auto& t : tokens)
    if (t.empty())
      throw std::runtime_error("a login failed");
  return tokens;
}

double wake_round_trip_us(int rounds) {
  int ping[2], pong[2];
  if (::pipe(ping) != 0)
    throw std::runtime_error("pipe failed");
  if (::pipe(pong) != 0) {
    ::close(ping[0]);
    ::close(ping[1]);
    throw std::runtime_error("pipe failed");
  }
  // The two ends on different cores (else the kernel wakes the echo on
  // the caller's core, which is cheap and not what a server pays).
  auto pin = [](int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
  };
  cpu_set_t before;
  ::pthread_getaffinity_np(::pthread_self(), sizeof before, &before);
  bool two = std::thread::hardware_concurrency() >= 2 && pin(0);
  std::thread echo{[&] {
    if (two)
      pin(1);
    char c;
    for (int i = 0; i < rounds; ++i)
      if (::read(ping[0], &c, 1) != 1 || ::write(pong[1], &c, 1) != 1)
        return;
  }};
  std::vector<double> us;
  us.reserve(rounds);
  char c = 'x';
  for (int i = 0; i < rounds; ++i) {
    auto t0 = now_ns();
    if (::write(ping[1], &c, 1) != 1 || ::read(pong[0], &c, 1) != 1)
      break;
    us.push_back((now_ns() - t0) / 1e3);
  }
  ::close(ping[1]); // ends the echo thread if a round failed
  echo.join();
  ::pthread_setaffinity_np(::pthread_self(), sizeof before, &before);
  for (int fd : {ping[0], pong[0], pong[1]})
    ::close(fd);
  if (us.empty())
    return -1;
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}

void print_wake_cost(const char* label) {
  std::printf("machine: wake round trip %.1f us (%s; pipe ping-pong between "
              "two cores, median)\n",
              wake_round_trip_us(), label);
  std::fflush(stdout);
}

} // namespace parley::bench
