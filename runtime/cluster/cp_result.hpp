#pragma once

// The result type of control-plane calls: a value or a cp_error (a code
// and a reason). No exceptions, no CAF.

#include <string>
#include <utility>
#include <variant>

namespace parley::cluster {

/// Why a control-plane call failed.
enum class cp_errc {
  unreachable, ///< could not connect (nothing listens, refused)
  timeout,     ///< the call's deadline passed
  closed,      ///< the connection closed before a whole answer came
  http,        ///< an HTTP error status or a malformed HTTP answer
  bad_answer,  ///< the answer's JSON is malformed, oversized or unexpected
  lease_gone,  ///< the lease does not exist (expired or revoked)
  server,      ///< the server refused the request (its message says why)
  compacted,   ///< a watch's start revision is no longer kept
};

/// A stable lowercase name for `x`.
const char* to_string(cp_errc x);

/// A failed call: a code and a human-readable reason.
struct cp_error {
  cp_errc code;
  std::string message;
};

/// A value or a cp_error.
template <class T>
class cp_result {
public:
  cp_result(T x) : v_(std::move(x)) {}
  cp_result(cp_error e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const cp_error& error() const { return std::get<1>(v_); }

private:
  std::variant<T, cp_error> v_;
};

/// The value of calls that answer nothing but success.
struct cp_done {};

} // namespace parley::cluster
