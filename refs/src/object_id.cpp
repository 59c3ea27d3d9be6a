#include "dref/refs/object_id.hpp"

#include <cstdio>
#include <random>

namespace dref {

uint64_t new_owner_id() {
  std::random_device rd;
  for (;;) {
    uint64_t x = (uint64_t{rd()} << 32) ^ rd();
    // 0 names nothing; the top 16 values mark ref descriptor formats
    // (ref_descriptor_format2).
    if (x != 0 && x < 0xFFFFFFFFFFFFFFF0ull)
      return x;
  }
}

std::string to_string(const object_id& x) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%016llx:%llu",
                static_cast<unsigned long long>(x.owner),
                static_cast<unsigned long long>(x.seq));
  return buf;
}

std::optional<object_id> object_id_from_string(std::string_view text) {
  if (text.size() < 18 || text.size() > 37 || text[16] != ':')
    return std::nullopt;
  object_id result;
  for (size_t i = 0; i < 16; ++i) {
    auto c = text[i];
    uint64_t d = c >= '0' && c <= '9'   ? uint64_t(c - '0')
                 : c >= 'a' && c <= 'f' ? uint64_t(c - 'a' + 10)
                                        : 16;
    if (d == 16)
      return std::nullopt;
    result.owner = result.owner << 4 | d;
  }
  auto seq = text.substr(17);
  if (seq.size() > 1 && seq[0] == '0')
    return std::nullopt;
  for (auto c : seq) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    if (result.seq > (UINT64_MAX - d) / 10)
      return std::nullopt; // overflow
    result.seq = result.seq * 10 + d;
  }
  return result;
}

} // namespace dref
