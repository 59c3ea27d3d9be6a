#include "dref/refs/object_id.hpp"

#include <cstdio>
#include <random>

namespace dref {

uint64_t new_owner_id() {
  std::random_device rd;
  uint64_t x = (uint64_t{rd()} << 32) ^ rd();
  return x == 0 ? 1 : x;
}

std::string to_string(const object_id& x) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%016llx:%llu",
                static_cast<unsigned long long>(x.owner),
                static_cast<unsigned long long>(x.seq));
  return buf;
}

} // namespace dref
