#include "dref/refs/object_id.hpp"

#include <cstdio>

namespace dref {

std::string to_string(const object_id& x) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%016llx:%llu",
                static_cast<unsigned long long>(x.owner),
                static_cast<unsigned long long>(x.seq));
  return buf;
}

} // namespace dref
