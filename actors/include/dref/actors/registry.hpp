#pragma once

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caf/actor_system_config.hpp"
#include "caf/expected.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/refs/fwd.hpp"

namespace dref {

/// Calls a registered function on serialized arguments. `args[i]` views the
/// serialized i-th argument (in a task, a store, or a mapped node-store
/// segment: see `zero_copy_scope`); the result is the serialized return
/// value. Exceptions thrown by the user's code propagate to the caller (the
/// worker turns them into `task_failed`).
using invoker = std::function<caf::expected<blob>(const byte_view* args)>;

/// A function registered with DREF_REMOTE.
struct function_entry {
  std::string name;
  std::string result_type;
  std::vector<std::string> arg_types;
  invoker invoke;
};

/// A method of a DREF_ACTOR class.
struct method_entry {
  std::string name;
  std::string result_type;
  std::vector<std::string> arg_types;
  std::function<caf::expected<blob>(void* self, const byte_view* args)>
    invoke;
  /// Identifies the member pointer: its type plus its bytes.
  std::string key;
  /// A const member function: it does not change the state (durable
  /// actors save no state after it; `mutable` members are not saved).
  bool is_const = false;
};

/// A constructor of a DREF_ACTOR class, registered when a `spawn` with these
/// argument types appears anywhere in the program.
struct constructor_entry {
  std::vector<std::string> arg_types;
  std::function<caf::expected<std::shared_ptr<void>>(const byte_view* args)>
    create;
};

/// Saves and restores the state of a DREF_ACTOR class through its `inspect`
/// function; registered when a durable `spawn` of the class appears.
struct state_entry {
  std::function<caf::expected<blob>(const void* self)> save;
  std::function<caf::expected<std::shared_ptr<void>>(const blob& state)> load;
};

/// A class registered with DREF_ACTOR.
struct actor_class_entry {
  /// The class's name as DREF_ACTOR spells it: what tasks, checkpoints
  /// and messages call it.
  std::string name;
  /// `detail::class_key` of the class: the key of its constructors and
  /// state in this registry, inside one process only (never sent, never
  /// shown).
  std::string type;
  std::vector<method_entry> methods;
};

/// The code a worker may run: functions and actor classes, by name.
///
/// Filled during static initialization (DREF_REMOTE, DREF_ACTOR and each
/// `spawn` instantiation), read-only once `main` runs; every process of a
/// program holds the same registry because workers run the same binary.
/// Thread safety: writes only before `main`; reads from any thread after.
class registry {
public:
  static registry& instance();

  void add_function(const void* fn, function_entry entry);
  const function_entry* function(const std::string& name) const;
  const std::string* function_name(const void* fn) const;

  void add_class(std::type_index type, actor_class_entry entry);
  const actor_class_entry* actor_class(const std::string& name) const;
  const actor_class_entry* actor_class(std::type_index type) const;

  void add_state(const std::string& type_tag, state_entry entry);
  const state_entry* state(const std::string& type_tag) const;

  void add_constructor(const std::string& key, constructor_entry entry);
  const constructor_entry* constructor(const std::string& key) const;

  /// Adds a user type that travels in plain CAF messages (DREF_MESSAGE_TYPE).
  void add_message_type(std::function<void(caf::actor_system_config&)> f);

  /// Registers every DREF_MESSAGE_TYPE with `cfg` (drivers and workers).
  void add_user_message_types(caf::actor_system_config& cfg) const;

  /// The key of a constructor of class `type_tag` taking `arg_types`.
  static std::string constructor_key(const std::string& type_tag,
                                     const std::vector<std::string>& arg_types);

private:
  std::unordered_map<std::string, function_entry> functions_;
  std::unordered_map<const void*, std::string> function_names_;
  std::unordered_map<std::string, actor_class_entry> classes_;
  std::unordered_map<std::type_index, std::string> class_names_;
  std::unordered_map<std::string, constructor_entry> constructors_;
  std::unordered_map<std::string, state_entry> states_;
  std::vector<std::function<void(caf::actor_system_config&)>> message_types_;
};

namespace detail {

template <class F>
struct fn_traits;

template <class R, class... As>
struct fn_traits<R (*)(As...)> {
  using result = R;
  using args = std::tuple<std::decay_t<As>...>;
  static constexpr size_t arity = sizeof...(As);
};

template <class R, class... As>
struct fn_traits<R (*)(As...) noexcept> : fn_traits<R (*)(As...)> {};

template <class M>
struct method_traits;

template <class C, class R, class... As>
struct method_traits<R (C::*)(As...)> {
  using cls = C;
  using result = R;
  using args = std::tuple<std::decay_t<As>...>;
  using raw_args = std::tuple<As...>;
  static constexpr size_t arity = sizeof...(As);
  static constexpr bool is_const = false;
};

template <class C, class R, class... As>
struct method_traits<R (C::*)(As...) const> : method_traits<R (C::*)(As...)> {
  static constexpr bool is_const = true;
};

template <class C, class R, class... As>
struct method_traits<R (C::*)(As...) noexcept>
  : method_traits<R (C::*)(As...)> {};

template <class C, class R, class... As>
struct method_traits<R (C::*)(As...) const noexcept>
  : method_traits<R (C::*)(As...)> {
  static constexpr bool is_const = true;
};

/// The registry's key of an actor class `C` (its constructors, its
/// state): the compiler's name of the type, unique within the program.
/// Not `type_tag<C>()`, which would construct a `C` to read the name its
/// `inspect` gives, and which two classes may share.
template <class C>
const std::string& class_key() {
  static const std::string key = typeid(C).name();
  return key;
}

template <class Tuple, size_t... Is>
std::vector<std::string> type_tags(std::index_sequence<Is...>) {
  return {type_tag<std::tuple_element_t<Is, Tuple>>()...};
}

template <class Tuple>
std::vector<std::string> type_tags() {
  return type_tags<Tuple>(std::make_index_sequence<std::tuple_size_v<Tuple>>{});
}

// Deserializes every argument into `vals`; stops at the first error.
template <class Tuple, size_t... Is>
caf::error read_args(const byte_view* args, Tuple& vals,
                     std::index_sequence<Is...>) {
  caf::error err;
  static_cast<void>(args);
  static_cast<void>(((err = from_bytes(args[Is].data, args[Is].size,
                                       std::get<Is>(vals)),
                      !err)
                     && ...));
  return err;
}

template <class R, class Call>
caf::expected<blob> write_result(Call&& call) {
  blob out;
  if constexpr (std::is_void_v<R>) {
    call();
    if (auto err = to_blob(unit_t{}, out))
      return err;
  } else if constexpr (is_expected<std::decay_t<R>>::value) {
    // The task failed without throwing: its error is the result's.
    auto&& value = call();
    if (!value)
      return std::move(value.error());
    if (auto err = write_value(*value, out))
      return err;
  } else {
    // Large results may go straight into the node store (`write_value`).
    auto&& value = call();
    if (auto err = write_value(value, out))
      return err;
  }
  return out;
}

template <class R, class... As, size_t... Is>
caf::expected<blob> invoke_fn(R (*fn)(As...), const byte_view* args,
                              std::index_sequence<Is...> is) {
  std::tuple<std::decay_t<As>...> vals;
  if (auto err = read_args(args, vals, is))
    return err;
  return write_result<R>(
    [&]() -> decltype(auto) { return fn(std::forward<As>(std::get<Is>(vals))...); });
}

template <class F>
const void* fn_address(F fn) {
  return reinterpret_cast<const void*>(fn);
}

template <class M>
std::string method_key(M m) {
  std::string key = typeid(M).name();
  key += '#';
  char bytes[sizeof(M)];
  std::memcpy(bytes, &m, sizeof(M));
  key.append(bytes, sizeof(M));
  return key;
}

template <class C, class M, class R, class... As, size_t... Is>
caf::expected<blob> invoke_method(M m, void* self, const byte_view* args,
                                  std::tuple<As...>*,
                                  std::index_sequence<Is...> is) {
  std::tuple<std::decay_t<As>...> vals;
  if (auto err = read_args(args, vals, is))
    return err;
  auto obj = static_cast<C*>(self);
  return write_result<R>([&]() -> decltype(auto) {
    return (obj->*m)(std::forward<As>(std::get<Is>(vals))...);
  });
}

/// Registers one function at static-initialization time.
struct function_registrar {
  template <class R, class... As>
  function_registrar(const char* name, R (*fn)(As...)) {
    function_entry e;
    e.name = name;
    e.result_type = type_tag<result_type_t<R>>();
    e.arg_types = {type_tag<std::decay_t<As>>()...};
    e.invoke = [fn](const byte_view* args) {
      return invoke_fn(fn, args, std::index_sequence_for<As...>{});
    };
    registry::instance().add_function(fn_address(fn), std::move(e));
  }
  template <class R, class... As>
  function_registrar(const char* name, R (*fn)(As...) noexcept)
    : function_registrar(name, reinterpret_cast<R (*)(As...)>(fn)) {
    // nop
  }
};

template <class C, class M>
method_entry make_method(const char* name, M m) {
  using traits = method_traits<M>;
  using args = typename traits::args;
  method_entry e;
  e.name = name;
  e.result_type = type_tag<result_type_t<typename traits::result>>();
  e.arg_types = type_tags<args>();
  e.key = method_key(m);
  e.is_const = traits::is_const;
  e.invoke = [m](void* self, const byte_view* xs) {
    return invoke_method<C, M, typename traits::result>(
      m, self, xs, static_cast<typename traits::raw_args*>(nullptr),
      std::make_index_sequence<traits::arity>{});
  };
  return e;
}

/// Registers one actor class and its methods at static-initialization time.
template <class C>
struct class_registrar {
  template <class... Ms>
  class_registrar(const char* name, const char* method_names, Ms... ms) {
    actor_class_entry e;
    e.name = name;
    e.type = class_key<C>();
    auto names = split_names(method_names, sizeof...(Ms));
    size_t i = 0;
    (e.methods.push_back(make_method<C>(names[i++].c_str(), ms)), ...);
    registry::instance().add_class(typeid(C), std::move(e));
  }

  static std::vector<std::string> split_names(const char* str, size_t n) {
    std::vector<std::string> out;
    std::string cur;
    for (auto p = str; *p; ++p) {
      if (*p == ',') {
        out.push_back(cur);
        cur.clear();
      } else if (*p != ' ' && *p != '&') {
        cur += *p;
      }
    }
    out.push_back(cur);
    out.resize(n);
    for (auto& x : out) { // "cls::method" -> "method"
      auto pos = x.rfind("::");
      if (pos != std::string::npos)
        x = x.substr(pos + 2);
    }
    return out;
  }
};

/// Registers the constructor `C(As...)` before `main` in every process of
/// the program: `spawn<C>(as...)` odr-uses `registered`, which instantiates
/// this template and so its initializer.
template <class C, class... As>
struct constructor_registrar {
  static const bool registered;

  static bool add() {
    constructor_entry e;
    e.arg_types = {type_tag<As>()...};
    e.create = [](const byte_view* args)
      -> caf::expected<std::shared_ptr<void>> {
      std::tuple<As...> vals;
      if (auto err = read_args(args, vals, std::index_sequence_for<As...>{}))
        return err;
      return std::apply(
        [](auto&&... xs) {
          return std::static_pointer_cast<void>(
            std::make_shared<C>(std::move(xs)...));
        },
        std::move(vals));
    };
    auto key = registry::constructor_key(class_key<C>(), e.arg_types);
    registry::instance().add_constructor(key, std::move(e));
    return true;
  }
};

template <class C, class... As>
const bool constructor_registrar<C, As...>::registered
  = constructor_registrar<C, As...>::add();

/// Registers state save/load for `C` (which needs `inspect` and a default
/// constructor) before `main`, like `constructor_registrar`.
template <class C>
struct state_registrar {
  static const bool registered;

  static bool add() {
    state_entry e;
    e.save = [](const void* self) -> caf::expected<blob> {
      blob out;
      if (auto err = to_blob(*static_cast<const C*>(self), out))
        return err;
      return out;
    };
    e.load = [](const blob& bytes) -> caf::expected<std::shared_ptr<void>> {
      auto obj = std::make_shared<C>();
      if (auto err = from_blob(bytes, *obj))
        return err;
      return std::static_pointer_cast<void>(obj);
    };
    registry::instance().add_state(class_key<C>(), std::move(e));
    return true;
  }
};

template <class C>
const bool state_registrar<C>::registered = state_registrar<C>::add();

} // namespace detail

} // namespace dref

#define DREF_PP_CAT_I(a, b) a##b
#define DREF_PP_CAT(a, b) DREF_PP_CAT_I(a, b)

/// Registers the free function `fn` under its name; only registered code
/// runs in workers. Use at namespace scope, once per function, in any
/// translation unit of the program.
#define DREF_REMOTE(fn)                                                        \
  static ::dref::detail::function_registrar DREF_PP_CAT(dref_fn_reg_,          \
                                                        __COUNTER__) {         \
    #fn, &fn                                                                   \
  }

/// Registers `type` (with an `inspect`) under `name` as a CAF message type in
/// the driver's and every worker's actor system, so that plain CAF messages
/// can carry it (also when it holds refs: see docs/architecture.md).
#define DREF_MESSAGE_TYPE(type, name)                                          \
  static const bool DREF_PP_CAT(dref_msg_reg_, __COUNTER__)                    \
    = (::dref::registry::instance().add_message_type(                          \
         [](::caf::actor_system_config& cfg) {                                 \
           cfg.add_message_type<type>(name);                                   \
         }),                                                                   \
       true)

/// Registers the actor class `cls` and the methods that callers may invoke:
/// `DREF_ACTOR(account, &account::deposit, &account::balance)`.
#define DREF_ACTOR(cls, ...)                                                   \
  static ::dref::detail::class_registrar<cls> DREF_PP_CAT(dref_cls_reg_,       \
                                                          __COUNTER__) {       \
    #cls, #__VA_ARGS__, __VA_ARGS__                                            \
  }
