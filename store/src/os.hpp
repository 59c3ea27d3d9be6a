#pragma once

// Small wrappers over the POSIX calls the store makes. Internal.

#include <cstddef>
#include <cstdint>
#include <string>

#include "caf/error.hpp"

namespace dref::internal {

/// An mmap'ed range, unmapped by the destructor. Shared by every buffer
/// that views it.
///
/// A segment the store itself writes has two views of the same pages:
/// `addr`, read-only, which readers get, and `writable`, read-write, which
/// only the segment's writer (and a restore from a spill file) uses, before
/// the seal. Sealing then needs no `mprotect` of the whole range, and a
/// segment kept for reuse goes back to a writer without one either (two
/// `mprotect`s cost ~3 ms each per 100 MiB here, docs/performance.md).
/// Readers in other processes map read-only only (`writable` null).
struct mapping {
  void* addr = nullptr;
  size_t length = 0;
  void* writable = nullptr;
  mapping(void* a, size_t n, void* w = nullptr)
    : addr(a), length(n), writable(w) {
  }
  ~mapping();
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;
  char* bytes() const noexcept {
    return static_cast<char*>(addr);
  }
  char* writable_bytes() const noexcept {
    return static_cast<char*>(writable);
  }
  /// Unmaps both views from `keep` bytes on (`keep` a page multiple).
  void shrink(size_t keep);
};

/// The store error for a failed OS call: `disk_full` for ENOSPC, EDQUOT
/// and EFBIG, `not_found` for ENOENT, else `io_error`; the context is
/// "<what> <path>: <strerror(err)>".
caf::error os_error(int err, const std::string& what, const std::string& path);

/// Writes all `n` bytes (retrying short writes and EINTR); 0 or an errno.
int write_all(int fd, const void* data, size_t n);

/// Reads exactly `n` bytes; 0, an errno, or -1 at a premature end of file.
int read_all(int fd, void* data, size_t n);

} // namespace dref::internal
