#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "caf/expected.hpp"

#include "dref/store/buffer.hpp"
#include "dref/store/error.hpp"

namespace dref {

/// Writable bytes that become an immutable `dref::buffer` without a copy:
/// how a task makes a large value in place, as a Plasma client fills an
/// object it created.
///
/// What: `size()` writable bytes at `data()` (uninitialized). Made by
/// `make_buffer_writer`. Inside a task in a worker, for a size above the
/// runtime's `inline_limit`, the bytes lie in a new segment of the node
/// store, mapped read-write into this process; elsewhere (the driver, a
/// worker without a node store, small sizes, or a full store) on the heap.
/// `finish()` ends the writing and returns the bytes as a `dref::buffer`.
/// Made with an element size (`make_buffer_writer(size, elem_size)`, or
/// through `array_writer<T>`), the buffer is typed: it records the element
/// size, in its serialized form too, and `as_array<T>()` views it in every
/// process that reads it. `data()` is aligned to `buffer_alignment`.
/// When a task returns that buffer (the buffer itself, as its result), the
/// runtime seals the segment as the task's result: the bytes the task wrote
/// are the bytes every reader maps. Returned inside another value, passed
/// to `dref::put`, or made on the heap, the buffer is serialized as any
/// other (one copy), and the segment is given up when it goes.
///
/// Who may touch it: one thread at a time (the task's); the buffer made by
/// `finish` is an ordinary `dref::buffer`, usable from any thread. Write
/// only before `finish`: afterwards the bytes are immutable (once sealed,
/// the mapping is read-only).
///
/// Invariant: `data()` points to `size()` writable bytes until `finish()`
/// or until the writer goes; a moved-from or finished writer is empty.
///
/// Who frees: the bytes are owned by a shared handle that the writer, and
/// then every copy of the buffer, hold. An unsealed segment whose last
/// holder goes (the task dropped the buffer, threw, or returned something
/// else) is aborted: its file is removed and its memory released; so it is
/// when the worker dies (its store connection closes). A sealed one belongs
/// to the store like any result (freed by the freeing rule); this process's
/// mapping and pin go with the buffer's last copy.
class buffer_writer {
public:
  buffer_writer() = default;

  /// For the runtime (`make_buffer_writer`): `size` writable bytes at
  /// `data`, kept valid by `keep`, holding elements of `elem_size` bytes
  /// (0: plain bytes).
  buffer_writer(char* data, size_t size, uint32_t elem_size,
                bool in_node_store, std::shared_ptr<const void> keep) noexcept
    : data_(data),
      size_(size),
      elem_size_(elem_size),
      in_node_store_(in_node_store),
      keep_(std::move(keep)) {
    // nop
  }

  buffer_writer(buffer_writer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      elem_size_(std::exchange(other.elem_size_, 0)),
      in_node_store_(std::exchange(other.in_node_store_, false)),
      keep_(std::move(other.keep_)) {
    // nop
  }

  buffer_writer& operator=(buffer_writer&& other) noexcept {
    if (this != &other) {
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      elem_size_ = std::exchange(other.elem_size_, 0);
      in_node_store_ = std::exchange(other.in_node_store_, false);
      keep_ = std::move(other.keep_);
    }
    return *this;
  }

  buffer_writer(const buffer_writer&) = delete;
  buffer_writer& operator=(const buffer_writer&) = delete;

  /// The bytes to fill (not initialized).
  char* data() const noexcept {
    return data_;
  }

  size_t size() const noexcept {
    return size_;
  }

  /// The element size the finished buffer records (0: plain bytes).
  uint32_t elem_size() const noexcept {
    return elem_size_;
  }

  /// True if the bytes lie in a node-store segment (else on the heap).
  bool in_node_store() const noexcept {
    return in_node_store_;
  }

  /// Ends the writing: the same bytes, no copy, as an immutable buffer.
  /// The writer is empty afterwards.
  buffer finish() && {
    buffer result{data_, size_, elem_size_, std::move(keep_)};
    data_ = nullptr;
    size_ = 0;
    elem_size_ = 0;
    in_node_store_ = false;
    return result;
  }

private:
  char* data_ = nullptr;
  size_t size_ = 0;
  uint32_t elem_size_ = 0;
  bool in_node_store_ = false;
  std::shared_ptr<const void> keep_;
};

/// Writable room for a value of `size` bytes (see `buffer_writer`): in a
/// node-store segment when called inside a worker that has a node store
/// and `size` is above the inline limit, else on the heap. A full node
/// store falls back to the heap too (the result then stays with the worker,
/// as any large result the store refuses). Errors: `store_full` if not even
/// the heap has room (`new` failed).
caf::expected<buffer_writer> make_buffer_writer(size_t size);

/// The same for a typed buffer: `size` bytes holding elements of
/// `elem_size` bytes (0: plain bytes, as above). The finished buffer
/// records `elem_size`, so `as_array<T>()` with `sizeof(T) == elem_size`
/// views it, wherever it is read; its bytes are aligned to
/// `buffer_alignment` (in the node store and on the heap alike). Errors:
/// `store_errc::invalid_argument` if `size` is not a multiple of
/// `elem_size`; `store_full` as above. `make_array_writer<T>` says the
/// same with a type.
caf::expected<buffer_writer> make_buffer_writer(size_t size,
                                                uint32_t elem_size);

/// Writable room for `size()` elements of the trivially copyable type `T`
/// that becomes a typed `dref::buffer` without a copy (`as_array<T>()`
/// views it): a `buffer_writer` of `size() * sizeof(T)` bytes recording
/// `sizeof(T)` as the element size. Made by `make_array_writer<T>`.
///
/// Who may touch it, invariant, who frees: as `buffer_writer` (which it
/// holds); `data()` is aligned to `buffer_alignment`, so for `T`. The
/// elements are not initialized: write each one before `finish()`.
template <class T>
class array_writer {
public:
  static_assert(std::is_trivially_copyable_v<T>,
                "a typed buffer holds a trivially copyable type");
  static_assert(alignof(T) <= buffer_alignment,
                "a typed buffer is aligned to 16 bytes only");

  array_writer() = default;

  /// For `make_array_writer`: the bytes of `w` (a multiple of `sizeof(T)`,
  /// recording `sizeof(T)`).
  explicit array_writer(buffer_writer w) noexcept : bytes_(std::move(w)) {
    // nop
  }

  /// The elements to fill (not initialized).
  T* data() const noexcept {
    return reinterpret_cast<T*>(bytes_.data());
  }

  /// The number of elements.
  size_t size() const noexcept {
    return bytes_.size() / sizeof(T);
  }

  T& operator[](size_t i) const noexcept {
    return data()[i];
  }

  T* begin() const noexcept {
    return data();
  }

  T* end() const noexcept {
    return data() + size();
  }

  /// True if the elements lie in a node-store segment (else on the heap).
  bool in_node_store() const noexcept {
    return bytes_.in_node_store();
  }

  /// Ends the writing: the same bytes, no copy, as an immutable typed
  /// buffer (`elem_size() == sizeof(T)`). The writer is empty afterwards.
  buffer finish() && {
    return std::move(bytes_).finish();
  }

private:
  buffer_writer bytes_;
};

/// Writable room for `count` elements of `T` (see `array_writer` and
/// `make_buffer_writer`): in the node store inside a worker when the array
/// is above the inline limit, else on the heap. Errors: `invalid_argument`
/// if `count * sizeof(T)` overflows; `store_full` if not even the heap has
/// room.
template <class T>
caf::expected<array_writer<T>> make_array_writer(size_t count) {
  static_assert(sizeof(T) <= UINT32_MAX);
  if (count > SIZE_MAX / sizeof(T))
    return make_error(store_errc::invalid_argument,
                      "an array of " + std::to_string(count)
                        + " elements of " + std::to_string(sizeof(T))
                        + " bytes is larger than memory");
  auto w = make_buffer_writer(count * sizeof(T),
                              static_cast<uint32_t>(sizeof(T)));
  if (!w)
    return std::move(w.error());
  return array_writer<T>{std::move(*w)};
}

} // namespace dref
