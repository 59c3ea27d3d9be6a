#include "core/call_site.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>

#include <cxxabi.h>
#include <dlfcn.h>

namespace dref::internal {

namespace {

std::string describe_call_site(const void* addr) {
  if (addr == nullptr)
    return {};
  Dl_info info;
  char buf[64];
  if (::dladdr(addr, &info) == 0 || info.dli_fname == nullptr) {
    std::snprintf(buf, sizeof(buf), "%p", addr);
    return buf;
  }
  std::string module = info.dli_fname;
  if (auto slash = module.rfind('/'); slash != std::string::npos)
    module = module.substr(slash + 1);
  std::snprintf(buf, sizeof(buf), "+0x%zx",
                static_cast<size_t>(static_cast<const char*>(addr)
                                    - static_cast<const char*>(info.dli_fbase)));
  auto result = module + buf;
  if (info.dli_sname != nullptr) {
    int status = 0;
    auto name = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    result += " (";
    result += status == 0 && name != nullptr ? name : info.dli_sname;
    result += ")";
    std::free(name);
  }
  return result;
}

} // namespace

std::vector<std::string>
describe_call_sites(const std::vector<const void*>& addrs) {
  std::map<const void*, std::string> names;
  std::vector<std::string> result;
  result.reserve(addrs.size());
  for (auto addr : addrs) {
    auto i = names.find(addr);
    if (i == names.end())
      i = names.emplace(addr, describe_call_site(addr)).first;
    result.push_back(i->second);
  }
  return result;
}

} // namespace dref::internal
