#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "caf/expected.hpp"

#include "dref/store/error.hpp"
#include "dref/store/fwd.hpp"

namespace dref {

/// The alignment of the bytes of every typed buffer (one with an element
/// size, see `buffer::as_array`), wherever it lies: in the node store, on
/// the heap, or read back from a value. Also the alignment `as_array`
/// supports at most (every fundamental type's, `alignof(std::max_align_t)`).
///
/// Where it comes from: a node-store segment (and a spill file) puts its
/// value 64 bytes into a page-aligned mapping, so every value starts
/// 64-byte aligned; a buffer that is a whole value (a task's result, a
/// `put` object, a buffer filled in place) has its bytes 16 bytes further
/// (its serialized header, docs/formats.md), so 16-byte aligned. Heap bytes
/// (`make_buffer`, `make_array_buffer`, a writer's heap memory, the copy
/// made when a buffer is read from an inline value) come from `operator
/// new`, 16-byte aligned. A typed buffer read back from where its bytes are
/// not so aligned (inside another value, after a field of odd size) is
/// copied to the heap instead of viewed in place; plain bytes are viewed
/// wherever they are.
constexpr size_t buffer_alignment = 16;

static_assert(alignof(std::max_align_t) <= buffer_alignment);
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= buffer_alignment,
              "heap buffers rely on operator new aligning to 16 bytes");

/// A read-only, contiguous view of `size()` elements of type `T` inside a
/// `buffer`; keeps the buffer (and so its mapping) alive.
template <class T>
class array_view {
public:
  array_view() = default;
  array_view(const T* data, size_t size, std::shared_ptr<const void> keep)
    : data_(data), size_(size), keep_(std::move(keep)) {
    // nop
  }
  const T* data() const noexcept {
    return data_;
  }
  size_t size() const noexcept {
    return size_;
  }
  bool empty() const noexcept {
    return size_ == 0;
  }
  const T& operator[](size_t i) const noexcept {
    return data_[i];
  }
  const T* begin() const noexcept {
    return data_;
  }
  const T* end() const noexcept {
    return data_ + size_;
  }

private:
  const T* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> keep_;
};

/// An immutable byte range of a stored value: usually a view into a sealed
/// shared-memory segment mapped read-only, so reading it copies nothing.
/// Either plain bytes (`elem_size() == 0`) or a typed buffer: an array of
/// `size() / elem_size()` elements, read with `as_array<T>()`.
///
/// Plain value type, cheap to copy (one shared handle); use from any thread.
/// Invariant: `data()` points to `size()` readable bytes for as long as any
/// copy of this buffer (or an `array_view` made from it) lives, even after
/// the object is freed, evicted or spilled (the mapping outlives the file
/// name). A typed buffer made by dref holds a whole number of elements at
/// an address aligned to `buffer_alignment`; one wrapped around foreign
/// memory with the constructor below may not (`as_array` then refuses it).
/// Ownership: the shared handle owns the mapping (unmapped with the
/// last copy) and, for buffers handed out by a `node_store`, a pin that
/// keeps the store from evicting or spilling the object meanwhile.
class buffer {
public:
  buffer() = default;

  /// Wraps `size` bytes at `data`, kept valid by `keep`.
  buffer(const char* data, size_t size, uint32_t elem_size,
         std::shared_ptr<const void> keep)
    : data_(data), size_(size), elem_size_(elem_size), keep_(std::move(keep)) {
    // nop
  }

  const char* data() const noexcept {
    return data_;
  }
  size_t size() const noexcept {
    return size_;
  }
  bool empty() const noexcept {
    return size_ == 0;
  }

  /// The element size of a typed buffer (0: plain bytes): recorded when it
  /// was made as an array of a trivially copyable type (`make_array_writer`,
  /// `make_array_buffer`, `node_store::put_array`) and kept when the buffer
  /// is serialized inside a value and read back (docs/formats.md).
  uint32_t elem_size() const noexcept {
    return elem_size_;
  }

  /// The handle that keeps the bytes valid (shared by every copy).
  const std::shared_ptr<const void>& handle() const noexcept {
    return keep_;
  }

  /// Views the bytes as an array of `T` without copying. Succeeds for a
  /// buffer made as an array of elements of `sizeof(T)` bytes
  /// (`make_array_writer<T>`, `make_array_buffer`, `node_store::put_array`,
  /// or any of those read back from a value); such a buffer's bytes are
  /// always aligned to `buffer_alignment`. Fails with
  /// `store_errc::invalid_argument`, its context saying why in words: the
  /// buffer holds plain bytes, or elements of another size, or a size that
  /// is not a whole number of elements, or its bytes are not aligned for
  /// `T` (only a buffer wrapped around foreign memory can be).
  template <class T>
  caf::expected<array_view<T>> as_array() const {
    static_assert(std::is_trivially_copyable_v<T>,
                  "zero-copy views need a trivially copyable type");
    static_assert(alignof(T) <= buffer_alignment,
                  "a typed buffer is aligned to 16 bytes only");
    if (elem_size_ == 0)
      return make_error(store_errc::invalid_argument,
                        "the buffer holds plain bytes, not an array: make it "
                        "with make_array_writer or make_array_buffer to read "
                        "it as one");
    if (elem_size_ != sizeof(T))
      return make_error(store_errc::invalid_argument,
                        "the buffer holds elements of "
                          + std::to_string(elem_size_)
                          + " bytes, not of the " + std::to_string(sizeof(T))
                          + " bytes of the type asked for");
    if (size_ % sizeof(T) != 0)
      return make_error(store_errc::invalid_argument,
                        "the buffer's " + std::to_string(size_)
                          + " bytes are not a whole number of elements of "
                          + std::to_string(sizeof(T)) + " bytes");
    if (reinterpret_cast<uintptr_t>(data_) % alignof(T) != 0)
      return make_error(store_errc::invalid_argument,
                        "the buffer's bytes are not aligned to the "
                          + std::to_string(alignof(T))
                          + " bytes the element type needs");
    return array_view<T>{reinterpret_cast<const T*>(data_),
                         size_ / sizeof(T), keep_};
  }

private:
  const char* data_ = nullptr;
  size_t size_ = 0;
  uint32_t elem_size_ = 0;
  std::shared_ptr<const void> keep_;
};

/// A buffer owning `bytes` on the heap (moved, not copied): how task code
/// makes a `dref::buffer` to return or pass on. A result above the
/// runtime's `inline_limit` then lives once in the node store, and tasks
/// that take it read it from there without copying.
inline buffer make_buffer(std::vector<char> bytes) {
  auto owned = std::make_shared<const std::vector<char>>(std::move(bytes));
  return buffer{owned->data(), owned->size(), 0, owned};
}

/// A buffer owning a copy of `size` bytes at `data`.
inline buffer make_buffer(const void* data, size_t size) {
  auto p = static_cast<const char*>(data);
  return make_buffer(std::vector<char>(p, p + size));
}

/// A buffer owning the bytes of `str` (moved, not copied).
inline buffer make_buffer(std::string str) {
  auto owned = std::make_shared<const std::string>(std::move(str));
  return buffer{owned->data(), owned->size(), 0, owned};
}

/// A typed buffer owning `values` on the heap (moved, not copied): an array
/// of `values.size()` elements of `sizeof(T)` bytes, which
/// `as_array<T>()` views again here, in every worker a task passes it to,
/// and in the driver. Use `make_array_writer<T>` inside a task to fill a
/// large array in the node store directly instead.
template <class T>
buffer make_array_buffer(std::vector<T> values) {
  static_assert(std::is_trivially_copyable_v<T>,
                "a typed buffer holds a trivially copyable type");
  static_assert(alignof(T) <= buffer_alignment,
                "a typed buffer is aligned to 16 bytes only");
  static_assert(sizeof(T) <= UINT32_MAX);
  auto owned = std::make_shared<const std::vector<T>>(std::move(values));
  return buffer{reinterpret_cast<const char*>(owned->data()),
                owned->size() * sizeof(T), static_cast<uint32_t>(sizeof(T)),
                owned};
}

} // namespace dref
