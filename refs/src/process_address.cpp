#include "dref/refs/process_address.hpp"

#include <cstdio>

namespace dref {

std::string to_string(const process_address& x) {
  char inc[32];
  std::snprintf(inc, sizeof(inc), "%016llx",
                static_cast<unsigned long long>(x.process));
  return (x.host.empty() ? std::string{"?"} : x.host) + ":"
         + std::to_string(x.port) + " (incarnation " + inc + ")";
}

} // namespace dref
