#include "crc32c.hpp"

#include <array>
#include <cstring>

namespace dref::internal {

namespace {

constexpr uint32_t reflected_poly = 0x82F63B78u;

struct crc_table {
  std::array<uint32_t, 256> t{};
  constexpr crc_table() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int bit = 0; bit < 8; ++bit)
        c = (c & 1u) ? (c >> 1) ^ reflected_poly : (c >> 1);
      t[b] = c;
    }
  }
};

constexpr crc_table table{};

uint32_t crc_portable(uint32_t state, const unsigned char* p, size_t n) {
  while (n-- > 0)
    state = (state >> 8) ^ table.t[(state ^ *p++) & 0xFFu];
  return state;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t
crc_hw(uint32_t state, const unsigned char* p, size_t n) {
  uint64_t s = state;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    s = __builtin_ia32_crc32di(s, w);
    p += 8;
    n -= 8;
  }
  auto s32 = static_cast<uint32_t>(s);
  while (n-- > 0)
    s32 = __builtin_ia32_crc32qi(s32, *p++);
  return s32;
}

bool have_hw() {
  static const bool result = __builtin_cpu_supports("sse4.2");
  return result;
}
#endif

} // namespace

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) noexcept {
  auto p = static_cast<const unsigned char*>(data);
  uint32_t state = ~crc;
#if defined(__x86_64__)
  if (have_hw())
    return ~crc_hw(state, p, size);
#endif
  return ~crc_portable(state, p, size);
}

} // namespace dref::internal
