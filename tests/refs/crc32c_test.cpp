// CRC-32C, the checksum of every checkpoint record and spill file (part of
// both frozen formats): known answers from the standard, and agreement
// between eight-bytes-at-a-time and byte-at-a-time pieces, for each of the
// two paths (the SSE 4.2 instruction and the slicing-by-8 table) and for
// `crc32c_extend`, which picks one of them.

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dref/refs/crc32c.hpp"

#include "crc32c_paths.hpp"

using namespace dref;

namespace {

using extend_fn = uint32_t (*)(uint32_t, const void*, size_t) noexcept;

struct crc_path {
  std::string name;
  extend_fn extend;
};

// The paths this CPU can run: the table always, the instruction when the CPU
// has it (a test below fails on x86-64 if it does not).
std::vector<crc_path> paths() {
  std::vector<crc_path> result{{"crc32c_extend", &crc32c_extend},
                               {"slicing by 8", &internal::crc32c_extend_sliced}};
  if (internal::crc32c_hardware_available())
    result.push_back({"sse4.2", &internal::crc32c_extend_hardware});
  return result;
}

uint32_t crc_of(const crc_path& path, std::string_view bytes) {
  return path.extend(0, bytes.data(), bytes.size());
}

std::string random_bytes(uint32_t seed, size_t n) {
  std::mt19937 gen{seed};
  std::string data(n, '\0');
  for (auto& c : data)
    c = static_cast<char>(gen());
  return data;
}

} // namespace

#if defined(__x86_64__)
TEST_CASE("this x86-64 machine has the SSE 4.2 crc32 instruction, so both "
          "paths are under test") {
  CHECK(internal::crc32c_hardware_available());
}
#endif

TEST_CASE("crc32c of \"123456789\" is the standard check value") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  for (auto& path : paths()) {
    INFO("path: " << path.name);
    CHECK(crc_of(path, "123456789") == 0xE3069283u);
    CHECK(crc_of(path, "") == 0u);
    CHECK(path.extend(0x12345678u, nullptr, 0) == 0x12345678u);
  }
}

TEST_CASE("crc32c matches the iSCSI test vectors of RFC 3720") {
  std::string zeros(32, '\0');
  std::string ones(32, '\xff');
  std::string up(32, '\0');
  std::string down(32, '\0');
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<char>(i);
    down[i] = static_cast<char>(31 - i);
  }
  for (auto& path : paths()) {
    INFO("path: " << path.name);
    CHECK(crc_of(path, zeros) == 0x8A9136AAu);
    CHECK(crc_of(path, ones) == 0x62A8AB43u);
    CHECK(crc_of(path, up) == 0x46DD794Eu);
    CHECK(crc_of(path, down) == 0x113FDB5Cu);
  }
}

TEST_CASE("crc32c computed in pieces equals crc32c of the whole, at any "
          "alignment") {
  auto data = random_bytes(42, 301);
  for (auto& path : paths()) {
    INFO("path: " << path.name);
    for (size_t start = 0; start < 9; ++start) {
      std::string_view whole{data.data() + start, data.size() - start};
      auto expected = crc_of(path, whole);
      for (size_t split = 0; split <= whole.size(); ++split) {
        auto head = crc_of(path, whole.substr(0, split));
        auto all = path.extend(head, whole.data() + split,
                               whole.size() - split);
        REQUIRE_MESSAGE(all == expected, "start " << start << ", split "
                                                  << split);
      }
      // Byte by byte never takes the eight-byte step.
      uint32_t bytewise = 0;
      for (char c : whole)
        bytewise = path.extend(bytewise, &c, 1);
      CHECK(bytewise == expected);
    }
  }
}

TEST_CASE("the two paths agree on random inputs of every length and "
          "alignment") {
  auto data = random_bytes(7, 1100);
  auto all = paths();
  for (size_t start = 0; start < 16; ++start)
    for (size_t size = 0; start + size <= data.size(); size += 1 + size / 8) {
      std::string_view piece{data.data() + start, size};
      auto expected = crc_of(all.front(), piece);
      for (auto& path : all)
        REQUIRE_MESSAGE(crc_of(path, piece) == expected,
                        path.name << ", start " << start << ", size " << size);
    }
}

TEST_CASE("flipping any single bit changes crc32c") {
  std::string data = "a durable actor's state, sixty-four bytes long, more or less!!";
  for (auto& path : paths()) {
    INFO("path: " << path.name);
    auto good = crc_of(path, data);
    for (size_t i = 0; i < data.size(); ++i)
      for (int bit = 0; bit < 8; ++bit) {
        auto bad = data;
        bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
        REQUIRE(crc_of(path, bad) != good);
      }
  }
}
