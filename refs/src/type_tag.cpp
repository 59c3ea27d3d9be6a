#include "dref/refs/type_tag.hpp"

#include <cstdlib>
#include <cxxabi.h>
#include <memory>
#include <string_view>

namespace dref::detail {

std::string demangled_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> raw{
    abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free};
  std::string name = status == 0 && raw ? raw.get() : type.name();
  // libstdc++'s inline namespace of its C++11 ABI is noise to a reader.
  static constexpr std::string_view abi_ns = "std::__cxx11::";
  for (auto pos = name.find(abi_ns); pos != std::string::npos;
       pos = name.find(abi_ns, pos))
    name.replace(pos, abi_ns.size(), "std::");
  return name;
}

} // namespace dref::detail
