#pragma once

#include <string>
#include <vector>

namespace dref::internal {

/// Renders code addresses of user calls that made objects as
/// `module+0xoffset (symbol)` (resolve the offset with `addr2line -e
/// <module>`), one string per address (empty for null). Equal addresses are
/// looked up once. Any thread; reads the dynamic linker's tables.
std::vector<std::string> describe_call_sites(
  const std::vector<const void*>& addrs);

} // namespace dref::internal
