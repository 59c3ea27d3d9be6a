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
///
/// Plain value type, cheap to copy (one shared handle); use from any thread.
/// Invariant: `data()` points to `size()` readable bytes for as long as any
/// copy of this buffer (or an `array_view` made from it) lives, even after
/// the object is freed, evicted or spilled (the mapping outlives the file
/// name). Ownership: the shared handle owns the mapping (unmapped with the
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

  /// Element size recorded when the value was put as an array of a
  /// trivially copyable type (0: plain bytes).
  uint32_t elem_size() const noexcept {
    return elem_size_;
  }

  /// The handle that keeps the bytes valid (shared by every copy).
  const std::shared_ptr<const void>& handle() const noexcept {
    return keep_;
  }

  /// Views the bytes as an array of `T` without copying. Fails with
  /// `invalid_argument` if the value was not put as an array of elements of
  /// `sizeof(T)` bytes, or the data is misaligned for `T` (segments align
  /// values to 64 bytes, so this only happens for foreign buffers).
  template <class T>
  caf::expected<array_view<T>> as_array() const {
    static_assert(std::is_trivially_copyable_v<T>,
                  "zero-copy views need a trivially copyable type");
    if (elem_size_ != sizeof(T) || size_ % sizeof(T) != 0
        || reinterpret_cast<uintptr_t>(data_) % alignof(T) != 0)
      return make_error(store_errc::invalid_argument,
                        "buffer does not hold an array of this type");
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

} // namespace dref
