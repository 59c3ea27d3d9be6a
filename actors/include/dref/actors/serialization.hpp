#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"
#include "caf/expected.hpp"
#include "caf/error.hpp"
#include "caf/deserializer.hpp"
#include "caf/detail/serialized_size.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/sec.hpp"
#include "caf/serializer.hpp"
#include "caf/serializer_impl.hpp"

#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/refs/fwd.hpp"
#include "dref/refs/ref.hpp"
#include "dref/refs/type_tag.hpp"
#include "dref/store/buffer.hpp"

namespace dref {

/// The value of a call whose function returns `void`.
struct unit_t {
  friend bool operator==(unit_t, unit_t) noexcept {
    return true;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unit_t&) {
  return f(caf::meta::type_name("dref.unit"));
}

namespace detail {

template <class R>
struct result_type {
  using type = std::conditional_t<std::is_void_v<R>, unit_t, std::decay_t<R>>;
};

// A task may return `caf::expected<T>` to fail without throwing: its ref
// holds a `T`, and an error fails the task with that error as it is.
template <class T>
struct result_type<caf::expected<T>> {
  using type = std::decay_t<T>;
};

template <class R>
struct is_expected : std::false_type {};

template <class T>
struct is_expected<caf::expected<T>> : std::true_type {};

} // namespace detail

/// Maps a function's return type to the type its ref holds (`void`:
/// `unit_t`; `caf::expected<T>`: `T`).
template <class R>
using result_type_t = typename detail::result_type<std::decay_t<R>>::type;

/// Serializes `x` into `out` (appending) with CAF's binary format.
template <class T>
caf::error to_blob(const T& x, blob& out) {
  caf::binary_serializer sink{nullptr, out};
  if (auto err = sink(const_cast<T&>(x)))
    return make_error(refs_errc::serialization_failed, "cannot serialize a "
                                                         + type_tag<T>());
  return caf::none;
}

/// The serialized bytes of one value, not owned: an argument as the
/// registry's invokers read it (from a task, a worker's store, or straight
/// from a mapped node-store segment).
struct byte_view {
  const char* data = nullptr;
  size_t size = 0;
};

namespace detail {

/// Why a decoder refused, in words: CAF's own codes by name
/// (`end_of_stream`), dref's errors with their category and context (e.g. a
/// buffer's unknown version).
inline std::string decode_reason(const caf::error& err) {
  if (err.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(err.code()));
  return render(err);
}

} // namespace detail

/// Reads `x` from `size` bytes at `data`; fails unless exactly all bytes are
/// consumed. The error names the type and says why.
template <class T>
caf::error from_bytes(const char* data, size_t size, T& x) {
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr),
                                  data, size};
  if (auto err = source(x))
    return make_error(refs_errc::serialization_failed,
                      "cannot deserialize a " + type_tag<T>() + ": "
                        + detail::decode_reason(err));
  if (source.remaining() != 0)
    return make_error(refs_errc::serialization_failed,
                      "trailing bytes after a " + type_tag<T>());
  return caf::none;
}

/// Reads `x` from `in`; fails unless exactly all bytes are consumed.
template <class T>
caf::error from_blob(const blob& in, T& x) {
  return from_bytes(in.data(), in.size(), x);
}

// -- zero-copy buffers ---------------------------------------------------------

/// While alive, every `dref::buffer` deserialized on this thread from bytes
/// that lie inside one of `sources` becomes a view of those bytes, kept
/// alive by that source's handle (a mapped node-store segment, or a stored
/// heap copy), instead of a heap copy. The runtime sets one around reading
/// task arguments and around `get`.
/// Who may touch it: the thread that made it, on the stack only; `sources`
/// must outlive the scope. Scopes nest; the innermost one counts.
class zero_copy_scope {
public:
  explicit zero_copy_scope(const std::vector<buffer>& sources) noexcept;
  ~zero_copy_scope();
  zero_copy_scope(const zero_copy_scope&) = delete;
  zero_copy_scope& operator=(const zero_copy_scope&) = delete;

private:
  const std::vector<buffer>* prev_;
};

namespace detail {

/// The serialized form of a `dref::buffer`, version 2 (docs/formats.md):
/// a 16-byte header, then the bytes.
///   0  u8 0x80, u8 0x00  the mark: an overlong varint of 0, which CAF
///                        never writes, so no version-1 buffer starts so
///   2  u8 version (2)    3  u8 zero
///   4  u32 element size (0: plain bytes)
///   8  u64 byte count (a multiple of the element size)
/// Integers little-endian. Version 1 (before it, still read): a CAF
/// sequence, varint length then the bytes (as a `std::vector<char>`),
/// plain bytes only.
constexpr size_t buffer_header_size = 16;
constexpr uint8_t buffer_format_version = 2;

/// Writes the version-2 header of a buffer of `size` bytes of elements of
/// `elem_size` bytes to `out`.
void encode_buffer_header(char* out, uint64_t size, uint32_t elem_size);

/// Writes a buffer in version 2: its header, then its bytes (one apply_raw
/// each). Fails with `serialization_failed` for a typed buffer whose size
/// is not a whole number of elements.
caf::error save_buffer(caf::serializer& f, const buffer& x);

/// Reads a buffer of either version: a view when the bytes lie in a source
/// of the current `zero_copy_scope` (and `f` is a binary deserializer) and,
/// for a typed buffer, are aligned to `buffer_alignment`; else a copy on
/// the heap. Fails with `serialization_failed` for an unknown version, a
/// size that is not a whole number of elements, or too few bytes.
caf::error load_buffer(caf::deserializer& f, buffer& x);

} // namespace detail

/// Serializes a `dref::buffer` with its element size (version 2 of its
/// form, see `detail::buffer_header_size`); reads version 1 too. See
/// `zero_copy_scope` for when reading it back copies nothing.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer& x) {
  if constexpr (std::is_base_of_v<caf::serializer, Inspector>)
    return detail::save_buffer(f, x);
  else if constexpr (std::is_base_of_v<caf::deserializer, Inspector>)
    return detail::load_buffer(f, x);
  else
    return f(caf::meta::type_name("dref.buffer"));
}

// -- results written in place ------------------------------------------------

/// Where a large task result is written in place: a worker sets one (a
/// region of the node store) around each task, so that a result above
/// `threshold()` serialized bytes goes straight into shared memory instead
/// of through a heap blob (see `write_value`).
/// Who may touch it: the thread running the task, through the innermost
/// `result_sink_scope`.
class result_sink {
public:
  virtual ~result_sink() = default;
  /// Results of more serialized bytes than this are offered to `open`.
  virtual size_t threshold() const = 0;
  /// A writable region of exactly `size` bytes, or null (the result is then
  /// serialized into a blob as usual, e.g. when the store is full).
  virtual char* open(size_t size) = 0;
  /// The region holds the whole value now (or, with `ok == false`, the
  /// value could not be written: the region is given up).
  virtual void close(bool ok) = 0;
  /// Offered a result that is a `dref::buffer` before anything else: true
  /// if its bytes are a node-store segment that task code filled in place
  /// (`buffer_writer`) and the sink sealed that segment as the result (no
  /// copy; nothing else is written); false to serialize it as usual.
  virtual bool seal_in_place(const buffer&) {
    return false;
  }
};

/// Makes `sink` the current result sink of this thread while alive.
/// Who may touch it: the thread that made it, on the stack only.
class result_sink_scope {
public:
  explicit result_sink_scope(result_sink* sink) noexcept;
  ~result_sink_scope();
  result_sink_scope(const result_sink_scope&) = delete;
  result_sink_scope& operator=(const result_sink_scope&) = delete;

private:
  result_sink* prev_;
};

namespace detail {

/// The sink of the innermost `result_sink_scope` of this thread, or null.
result_sink* current_result_sink() noexcept;

/// A fixed memory region as the container of a CAF binary serializer:
/// writes past its end are dropped and flagged.
struct region_buffer {
  using value_type = char;
  char* base = nullptr;
  size_t capacity = 0;
  size_t used = 0;
  bool overflow = false;
  size_t size() const noexcept {
    return used;
  }
  char* data() noexcept {
    return base;
  }
  char* end() noexcept {
    return base + used;
  }
  void insert(char*, const char* first, const char* last) {
    auto n = static_cast<size_t>(last - first);
    if (n > capacity - used) {
      overflow = true;
      return;
    }
    std::memcpy(base + used, first, n);
    used += n;
  }
  void insert(char*, size_t n, int value) {
    if (n > capacity - used) {
      overflow = true;
      return;
    }
    std::memset(base + used, value, n);
    used += n;
  }
};

} // namespace detail

/// Serializes a task's result `x`: a `dref::buffer` filled in place in the
/// node store is sealed as it is (`result_sink::seal_in_place`); else
/// straight into the current result sink's region when there is one and
/// `x` is larger than its threshold (then `out` stays empty), else into
/// `out` (as `to_blob`). A size pass comes first; refs met during it are
/// not collected (the write collects them).
template <class T>
caf::error write_value(const T& x, blob& out) {
  if (auto sink = detail::current_result_sink()) {
    if constexpr (std::is_same_v<T, buffer>)
      if (sink->seal_in_place(x))
        return caf::none; // filled in place by the task: sealed, no copy
    size_t size = 0;
    {
      std::vector<ref_base> ignored;
      ref_collect_scope not_collected{ignored};
      caf::detail::serialized_size_inspector f{
        static_cast<caf::execution_unit*>(nullptr)};
      if (!f(const_cast<T&>(x)))
        size = f.result();
    }
    if (size > sink->threshold()) {
      if (auto region = sink->open(size)) {
        detail::region_buffer buf{region, size};
        caf::serializer_impl<detail::region_buffer> f{
          static_cast<caf::execution_unit*>(nullptr), buf};
        auto err = f(const_cast<T&>(x));
        bool ok = !err && !buf.overflow && buf.used == size;
        sink->close(ok);
        if (!ok)
          return make_error(refs_errc::serialization_failed,
                            "cannot serialize a " + type_tag<T>()
                              + " into the node store");
        return caf::none;
      }
    }
  }
  return to_blob(x, out);
}

} // namespace dref
