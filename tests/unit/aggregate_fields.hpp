#pragma once

// Test helpers for message_types_test.cpp: the fields of an aggregate found
// by its shape (not by its inspect), field-by-field equality, an inspector
// that counts what inspect visits, and a binary round trip through CAF's
// serializers.

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/meta/annotation.hpp>

namespace parley::test {

// -- the fields of an aggregate, by its shape ----------------------------------

/// Converts to any field type: T{any_field{}...} compiles for up to as many
/// initializers as T has fields.
struct any_field {
  template <class U>
  operator U() const;
};

template <class T, class Seq, class = void>
struct brace_init_with : std::false_type {};

template <class T, size_t... Is>
struct brace_init_with<T, std::index_sequence<Is...>,
                       std::void_t<decltype(T{(void(Is), any_field{})...})>>
  : std::true_type {};

/// The number of fields of the aggregate T.
template <class T, size_t N = 0>
constexpr size_t field_count() {
  if constexpr (brace_init_with<T, std::make_index_sequence<N + 1>>::value)
    return field_count<T, N + 1>();
  else
    return N;
}

/// References to the fields of `x`, in declaration order.
template <class T>
auto fields(const T& x) {
  constexpr size_t n = field_count<T>();
  static_assert(n >= 1 && n <= 16, "extend fields() to this many fields");
  // clang-format off
  if constexpr (n == 1) { auto& [a] = x; return std::tie(a); }
  else if constexpr (n == 2) { auto& [a, b] = x; return std::tie(a, b); }
  else if constexpr (n == 3) { auto& [a, b, c] = x; return std::tie(a, b, c); }
  else if constexpr (n == 4) {
    auto& [a, b, c, d] = x; return std::tie(a, b, c, d);
  } else if constexpr (n == 5) {
    auto& [a, b, c, d, e] = x; return std::tie(a, b, c, d, e);
  } else if constexpr (n == 6) {
    auto& [a, b, c, d, e, f] = x; return std::tie(a, b, c, d, e, f);
  } else if constexpr (n == 7) {
    auto& [a, b, c, d, e, f, g] = x; return std::tie(a, b, c, d, e, f, g);
  } else if constexpr (n == 8) {
    auto& [a, b, c, d, e, f, g, h] = x;
    return std::tie(a, b, c, d, e, f, g, h);
  } else if constexpr (n == 9) {
    auto& [a, b, c, d, e, f, g, h, i] = x;
    return std::tie(a, b, c, d, e, f, g, h, i);
  } else if constexpr (n == 10) {
    auto& [a, b, c, d, e, f, g, h, i, j] = x;
    return std::tie(a, b, c, d, e, f, g, h, i, j);
  } else if constexpr (n == 11) {
    auto& [a, b, c, d, e, f, g, h, i, j, k] = x;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k);
  } else if constexpr (n == 12) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l] = x;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l);
  } else if constexpr (n == 13) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m] = x;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m);
  } else if constexpr (n == 14) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, o] = x;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, o);
  } else if constexpr (n == 15) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, o, p] = x;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, o, p);
  } else {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, o, p, q] = x;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, o, p, q);
  }
  // clang-format on
}

template <class T>
struct is_vector : std::false_type {};

template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

template <class T>
constexpr bool is_struct_v = std::is_class_v<T> && std::is_aggregate_v<T>
                             && !is_vector<T>::value;

/// Field-by-field equality (structs by their fields, vectors by element).
template <class T>
bool deep_equal(const T& a, const T& b);

template <class Tuple, size_t... Is>
bool all_equal(const Tuple& a, const Tuple& b, std::index_sequence<Is...>) {
  return (deep_equal(std::get<Is>(a), std::get<Is>(b)) && ...);
}

template <class T>
bool deep_equal(const T& a, const T& b) {
  if constexpr (is_vector<T>::value) {
    if (a.size() != b.size())
      return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!deep_equal(a[i], b[i]))
        return false;
    return true;
  } else if constexpr (is_struct_v<T>) {
    return all_equal(fields(a), fields(b),
                     std::make_index_sequence<field_count<T>()>{});
  } else {
    return a == b;
  }
}

/// Indices of the fields of `x` equal to the default's.
template <class T, size_t... Is>
std::vector<size_t> default_fields(const T& x, std::index_sequence<Is...>) {
  T def{};
  auto fx = fields(x);
  auto fd = fields(def);
  std::vector<size_t> out;
  ((deep_equal(std::get<Is>(fx), std::get<Is>(fd)) ? out.push_back(Is)
                                                    : void()),
   ...);
  return out;
}

// -- what inspect visits ---------------------------------------------------------

/// An inspector that counts the values inspect passes (annotations such as
/// the type name do not count).
struct field_counter {
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;
  size_t values = 0;

  template <class... Ts>
  void operator()(Ts&&...) {
    values += (size_t{0} + ...
               + (caf::meta::is_annotation<std::decay_t<Ts>>::value ? 0 : 1));
  }
};

// -- serialization ---------------------------------------------------------------

template <class T>
std::vector<char> to_bytes(caf::actor_system* sys, T x) {
  std::vector<char> buf;
  auto write = [&](caf::binary_serializer& sink) {
    if (auto err = sink(x))
      FAIL("cannot serialize: " << caf::to_string(err));
  };
  if (sys) {
    caf::binary_serializer sink{*sys, buf};
    write(sink);
  } else {
    caf::binary_serializer sink{nullptr, buf};
    write(sink);
  }
  return buf;
}

template <class T>
caf::error from_bytes(caf::actor_system* sys, const std::vector<char>& buf,
                      T& x) {
  auto read = [&](caf::binary_deserializer& source) -> caf::error {
    if (auto err = source(x))
      return err;
    if (source.remaining() != 0)
      return caf::make_error(caf::sec::runtime_error,
                             "bytes left over: "
                               + std::to_string(source.remaining()));
    return caf::none;
  };
  if (sys) {
    caf::binary_deserializer source{*sys, buf};
    return read(source);
  }
  caf::binary_deserializer source{nullptr, buf};
  return read(source);
}

} // namespace parley::test
