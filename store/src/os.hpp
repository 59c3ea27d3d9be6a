#pragma once

// Small wrappers over the POSIX calls the store makes. Internal.

#include <cstddef>
#include <cstdint>
#include <string>

#include "caf/error.hpp"

namespace dref::internal {

/// An mmap'ed range, unmapped by the destructor. Shared by every buffer
/// that views it.
struct mapping {
  void* addr = nullptr;
  size_t length = 0;
  mapping(void* a, size_t n) : addr(a), length(n) {
  }
  ~mapping();
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;
  char* bytes() const noexcept {
    return static_cast<char*>(addr);
  }
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
