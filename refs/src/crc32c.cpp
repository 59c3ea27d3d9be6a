#include "dref/refs/crc32c.hpp"

#include <array>
#include <cassert>
#include <cstring>

#include "crc32c_paths.hpp"

namespace dref::internal {

namespace {

// The reflected form of the Castagnoli polynomial 0x1EDC6F41.
constexpr uint32_t reflected_poly = 0x82F63B78u;

// tables[0][b] is the CRC update for one byte b. tables[k][b] is the update
// for byte b followed by k zero bytes, which lets the loop below fold eight
// input bytes per step ("slicing by eight").
struct crc_tables {
  std::array<std::array<uint32_t, 256>, 8> t{};

  constexpr crc_tables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int bit = 0; bit < 8; ++bit)
        c = (c & 1u) ? (c >> 1) ^ reflected_poly : (c >> 1);
      t[0][b] = c;
    }
    for (size_t k = 1; k < 8; ++k)
      for (uint32_t b = 0; b < 256; ++b)
        t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  }
};

constexpr crc_tables tables{};

uint64_t load_le64(const unsigned char* p) noexcept {
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i)
    x = (x << 8) | p[i];
  return x;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t
crc_hw(uint32_t state, const unsigned char* p, size_t n) noexcept {
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
#endif

} // namespace

uint32_t crc32c_extend_sliced(uint32_t crc, const void* data,
                              size_t size) noexcept {
  auto& t = tables.t;
  auto p = static_cast<const unsigned char*>(data);
  uint32_t state = ~crc;
  // Bytes one at a time up to an 8-byte boundary, then 8 at a time.
  while (size > 0 && reinterpret_cast<uintptr_t>(p) % 8 != 0) {
    state = (state >> 8) ^ t[0][(state ^ *p++) & 0xFFu];
    --size;
  }
  while (size >= 8) {
    uint64_t w = load_le64(p) ^ state;
    state = t[7][w & 0xFF] ^ t[6][(w >> 8) & 0xFF] ^ t[5][(w >> 16) & 0xFF]
            ^ t[4][(w >> 24) & 0xFF] ^ t[3][(w >> 32) & 0xFF]
            ^ t[2][(w >> 40) & 0xFF] ^ t[1][(w >> 48) & 0xFF]
            ^ t[0][w >> 56];
    p += 8;
    size -= 8;
  }
  while (size > 0) {
    state = (state >> 8) ^ t[0][(state ^ *p++) & 0xFFu];
    --size;
  }
  return ~state;
}

bool crc32c_hardware_available() noexcept {
#if defined(__x86_64__)
  static const bool result = __builtin_cpu_supports("sse4.2");
  return result;
#else
  return false;
#endif
}

uint32_t crc32c_extend_hardware(uint32_t crc, const void* data,
                                size_t size) noexcept {
  assert(crc32c_hardware_available());
#if defined(__x86_64__)
  return ~crc_hw(~crc, static_cast<const unsigned char*>(data), size);
#else
  return crc32c_extend_sliced(crc, data, size);
#endif
}

} // namespace dref::internal

namespace dref {

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) noexcept {
  if (internal::crc32c_hardware_available())
    return internal::crc32c_extend_hardware(crc, data, size);
  return internal::crc32c_extend_sliced(crc, data, size);
}

} // namespace dref
