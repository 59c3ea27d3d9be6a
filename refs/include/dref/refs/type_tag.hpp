#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "caf/error.hpp"
#include "caf/meta/type_name.hpp"

#include "dref/refs/fwd.hpp"

namespace dref {

/// The stable, readable name of `T`: what task arguments, results and ref
/// descriptors say a value's type is, and what `type_mismatch` errors name.
/// Equal in every program that declares `T` the same way (also programs
/// built separately), never a compiler's mangled name:
/// - `bool`, `char`, `int8` ... `int64`, `uint8` ... `uint64` (by size and
///   signedness, so `long` and `long long` of 64 bits are both `int64`),
///   `float`, `double`, `long double`;
/// - `std::string`, `std::u16string`, `std::u32string`;
/// - `std::vector<T>`, `std::list<T>`, `std::deque<T>`, `std::set<T>`,
///   `std::unordered_set<T>`, `std::map<K, V>`, `std::unordered_map<K, V>`,
///   `std::pair<A, B>`, `std::tuple<Ts...>`, `std::optional<T>`,
///   `std::array<T, N>` of the names of their elements (allocators,
///   comparators and hashers are not part of the name);
/// - `dref::ref<T>`;
/// - a class with an `inspect` overload that passes a
///   `caf::meta::type_name` (as CAF 0.17 asks): that name (`"point"`,
///   `"dref.unit"`, `"dref.buffer"`). To read it the class is
///   default-constructed once, on the first call;
/// - anything else (an enum, a class without `inspect` or without a
///   default constructor or without a type name in it): the compiler's
///   demangled name with `std::__cxx11::` shortened to `std::`, readable
///   and stable for one compiler; give such a class a type name in its
///   `inspect` to make it stable everywhere.
/// Two types of the same name are the same type to dref (as they are to
/// CAF's type registry): give different types different names.
///
/// Thread-safe; the name is made once per type and kept until exit.
template <class T>
const std::string& type_tag();

namespace detail {

/// The compiler's name of `type`, demangled, with `std::__cxx11::` as
/// `std::` (the fallback of `type_tag`).
std::string demangled_name(const std::type_info& type);

/// An inspector that runs an `inspect` overload only to learn the first
/// `caf::meta::type_name` it passes; it reads no field and runs no
/// callback. Who may touch it: `type_tag`, on its stack.
class type_name_probe {
public:
  using result_type = caf::error;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;

  template <class... Ts>
  caf::error operator()(Ts&&... xs) {
    (note(xs), ...);
    return caf::none;
  }

  /// The name seen, or null.
  const char* name() const noexcept {
    return name_;
  }

private:
  template <class X>
  void note(const X& x) noexcept {
    if constexpr (std::is_same_v<X, caf::meta::type_name_t>)
      if (name_ == nullptr)
        name_ = x.value;
  }

  const char* name_ = nullptr;
};

template <class T, class = void>
struct has_named_inspect : std::false_type {};

template <class T>
struct has_named_inspect<T, std::void_t<decltype(inspect(
                              std::declval<type_name_probe&>(),
                              std::declval<T&>()))>> : std::true_type {};

// `name<A, B, ...>` of the names of `Ts`.
template <class... Ts>
std::string template_name(const char* name) {
  std::string out = name;
  out += '<';
  bool first = true;
  ((out += (first ? "" : ", ") + type_tag<Ts>(), first = false), ...);
  out += '>';
  return out;
}

/// Makes the name of `T` (see `type_tag`); specialized below for the
/// standard containers and refs.
template <class T>
struct type_tag_maker {
  static std::string make() {
    if constexpr (std::is_same_v<T, bool>) {
      return "bool";
    } else if constexpr (std::is_same_v<T, char>) {
      return "char";
    } else if constexpr (std::is_integral_v<T>
                         && !std::is_same_v<T, wchar_t>
                         && !std::is_same_v<T, char16_t>
                         && !std::is_same_v<T, char32_t>) {
      return (std::is_signed_v<T> ? "int" : "uint")
             + std::to_string(sizeof(T) * 8);
    } else if constexpr (std::is_same_v<T, float>) {
      return "float";
    } else if constexpr (std::is_same_v<T, double>) {
      return "double";
    } else if constexpr (std::is_same_v<T, long double>) {
      return "long double";
    } else if constexpr (std::is_class_v<T> && has_named_inspect<T>::value
                         && std::is_default_constructible_v<T>) {
      T x{};
      type_name_probe f;
      static_cast<void>(inspect(f, x));
      if (f.name() != nullptr)
        return f.name();
      return demangled_name(typeid(T));
    } else {
      return demangled_name(typeid(T));
    }
  }
};

template <class Tr, class A>
struct type_tag_maker<std::basic_string<char, Tr, A>> {
  static std::string make() {
    return "std::string";
  }
};

template <class Tr, class A>
struct type_tag_maker<std::basic_string<char16_t, Tr, A>> {
  static std::string make() {
    return "std::u16string";
  }
};

template <class Tr, class A>
struct type_tag_maker<std::basic_string<char32_t, Tr, A>> {
  static std::string make() {
    return "std::u32string";
  }
};

template <class T, class A>
struct type_tag_maker<std::vector<T, A>> {
  static std::string make() {
    return template_name<T>("std::vector");
  }
};

template <class T, class A>
struct type_tag_maker<std::list<T, A>> {
  static std::string make() {
    return template_name<T>("std::list");
  }
};

template <class T, class A>
struct type_tag_maker<std::deque<T, A>> {
  static std::string make() {
    return template_name<T>("std::deque");
  }
};

template <class T, class C, class A>
struct type_tag_maker<std::set<T, C, A>> {
  static std::string make() {
    return template_name<T>("std::set");
  }
};

template <class T, class H, class E, class A>
struct type_tag_maker<std::unordered_set<T, H, E, A>> {
  static std::string make() {
    return template_name<T>("std::unordered_set");
  }
};

template <class K, class V, class C, class A>
struct type_tag_maker<std::map<K, V, C, A>> {
  static std::string make() {
    return template_name<K, V>("std::map");
  }
};

template <class K, class V, class H, class E, class A>
struct type_tag_maker<std::unordered_map<K, V, H, E, A>> {
  static std::string make() {
    return template_name<K, V>("std::unordered_map");
  }
};

template <class A, class B>
struct type_tag_maker<std::pair<A, B>> {
  static std::string make() {
    return template_name<A, B>("std::pair");
  }
};

template <class... Ts>
struct type_tag_maker<std::tuple<Ts...>> {
  static std::string make() {
    return template_name<Ts...>("std::tuple");
  }
};

template <class T>
struct type_tag_maker<std::optional<T>> {
  static std::string make() {
    return template_name<T>("std::optional");
  }
};

template <class T>
struct type_tag_maker<ref<T>> {
  static std::string make() {
    return template_name<T>("dref::ref");
  }
};

template <class T, size_t N>
struct type_tag_maker<std::array<T, N>> {
  static std::string make() {
    return "std::array<" + type_tag<T>() + ", " + std::to_string(N) + ">";
  }
};

} // namespace detail

template <class T>
const std::string& type_tag() {
  static const std::string tag
    = detail::type_tag_maker<std::remove_cv_t<T>>::make();
  return tag;
}

} // namespace dref
