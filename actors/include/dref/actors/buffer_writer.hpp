#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "caf/expected.hpp"

#include "dref/store/buffer.hpp"

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
  /// `data`, kept valid by `keep`.
  buffer_writer(char* data, size_t size, bool in_node_store,
                std::shared_ptr<const void> keep) noexcept
    : data_(data),
      size_(size),
      in_node_store_(in_node_store),
      keep_(std::move(keep)) {
    // nop
  }

  buffer_writer(buffer_writer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      in_node_store_(std::exchange(other.in_node_store_, false)),
      keep_(std::move(other.keep_)) {
    // nop
  }

  buffer_writer& operator=(buffer_writer&& other) noexcept {
    if (this != &other) {
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
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

  /// True if the bytes lie in a node-store segment (else on the heap).
  bool in_node_store() const noexcept {
    return in_node_store_;
  }

  /// Ends the writing: the same bytes, no copy, as an immutable buffer.
  /// The writer is empty afterwards.
  buffer finish() && {
    buffer result{data_, size_, 0, std::move(keep_)};
    data_ = nullptr;
    size_ = 0;
    in_node_store_ = false;
    return result;
  }

private:
  char* data_ = nullptr;
  size_t size_ = 0;
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

} // namespace dref
