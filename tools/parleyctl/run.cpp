#include "tools/parleyctl/run.hpp"

#include <csignal>
#include <cstdio>
#include <iostream>

#include "tools/parleyctl/http.hpp"
#include "tools/parleyctl/render.hpp"

namespace parley::ctl {

std::atomic<bool> sigint_seen{false};

namespace {

constexpr std::chrono::seconds request_timeout{10};

void on_sigint(int) {
  sigint_seen = true;
}

/// The message of a node's error body {"error":{"status","message"}}, or
/// the body itself.
std::string error_message(const std::string& body) {
  if (auto j = parse_json(body))
    if (auto* e = j->get("error"); e && e->kind == json::object)
      if (auto m = e->str("message"); !m.empty())
        return visible(m);
  auto t = body.substr(0, 500);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r'))
    t.pop_back();
  return t.empty() ? "(no message)" : visible(t);
}

} // namespace

void catch_sigint(bool on) {
  static struct sigaction before{};
  if (!on) {
    sigaction(SIGINT, &before, nullptr);
    return;
  }
  struct sigaction sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, &before);
  sigint_seen = false;
}

std::optional<json> send(const settings& s, const admin::request& req,
                         int& code, const std::atomic<bool>* stop) {
  auto r = http_call(s.node, req.method, req.target, req.body, s.token,
                     request_timeout, stop);
  if (auto* f = std::get_if<http_failure>(&r)) {
    if (f->interrupted) {
      code = exit_interrupted;
      return std::nullopt;
    }
    std::cerr << "parleyctl: cannot reach the node at " << s.node.text()
              << ": " << f->message << "\n";
    code = exit_unreachable;
    return std::nullopt;
  }
  auto& a = std::get<http_answer>(r);
  if (a.status == 401 || a.status == 403) {
    std::cerr << "parleyctl: the node refused the token (HTTP " << a.status
              << "): " << error_message(a.body) << "\n";
    code = exit_token;
    return std::nullopt;
  }
  if (a.status < 200 || a.status >= 300) {
    std::cerr << "parleyctl: the node refused: " << error_message(a.body)
              << " (HTTP " << a.status << ")\n";
    code = exit_refused;
    return std::nullopt;
  }
  if (a.body.find_first_not_of(" \r\n\t") == std::string::npos)
    a.body = "{}";
  auto j = parse_json(a.body);
  if (!j) {
    std::cerr << "parleyctl: the node's answer is not JSON: "
              << visible(a.body.substr(0, 200)) << "\n";
    code = exit_refused;
    return std::nullopt;
  }
  code = exit_ok;
  return j;
}

int run_command(const settings& s, const admin::parsed_command& cmd) {
  auto& spec = *cmd.spec;
  if (spec.mode == admin::client_mode::local) {
    auto it = cmd.args.find("command");
    if (it == cmd.args.end())
      std::cout << admin::help_text();
    else
      std::cout << admin::help_text(*admin::find_command(it->second));
    return exit_ok;
  }
  if (s.token.empty()) {
    std::cerr << "parleyctl: no admin token: set PARLEYCTL_TOKEN, put "
                 "`token = ...` in "
              << default_config_path()
              << " (chmod 600), or give --token TOKEN\n";
    return exit_usage;
  }
  auto req = admin::to_request(cmd);
  if (spec.mode == admin::client_mode::top)
    return run_top(s, req);
  int code = exit_ok;
  auto answer = send(s, req, code, &sigint_seen);
  if (!answer) {
    if (code == exit_interrupted)
      std::cerr << "parleyctl: interrupted\n";
    return code;
  }
  if (spec.mode == admin::client_mode::job)
    return follow_job(s, std::move(*answer));
  if (s.json)
    std::cout << to_json(*answer) << "\n";
  else
    std::cout << render(*answer);
  std::cout.flush();
  return exit_ok;
}

int run_words(const settings& s, const std::vector<std::string>& words) {
  auto parsed = admin::parse(words);
  if (auto* err = std::get_if<std::string>(&parsed)) {
    std::cerr << "parleyctl: " << *err << "\n";
    return exit_usage;
  }
  return run_command(s, std::get<admin::parsed_command>(parsed));
}

} // namespace parley::ctl
