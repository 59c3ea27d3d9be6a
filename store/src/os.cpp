#include "os.hpp"

#include <cerrno>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

#include "dref/store/error.hpp"

namespace dref::internal {

mapping::~mapping() {
  if (addr != nullptr && addr != MAP_FAILED)
    ::munmap(addr, length);
  if (writable != nullptr && writable != MAP_FAILED)
    ::munmap(writable, length);
}

void mapping::shrink(size_t keep) {
  if (keep >= length)
    return;
  ::munmap(bytes() + keep, length - keep);
  if (writable != nullptr)
    ::munmap(writable_bytes() + keep, length - keep);
  length = keep;
}

caf::error os_error(int err, const std::string& what, const std::string& path) {
  auto code = store_errc::io_error;
  if (err == ENOSPC || err == EDQUOT || err == EFBIG)
    code = store_errc::disk_full;
  else if (err == ENOENT)
    code = store_errc::not_found;
  return make_error(code, what + " " + path + ": " + std::strerror(err));
}

int write_all(int fd, const void* data, size_t n) {
  auto p = static_cast<const char*>(data);
  while (n > 0) {
    auto k = ::write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
  return 0;
}

int read_all(int fd, void* data, size_t n) {
  auto p = static_cast<char*>(data);
  while (n > 0) {
    auto k = ::read(fd, p, n);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (k == 0)
      return -1;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return 0;
}

} // namespace dref::internal
