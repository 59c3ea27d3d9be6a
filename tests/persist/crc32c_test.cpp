// CRC-32C, the checksum of every checkpoint record (part of the frozen
// format): known answers from the standard, and agreement between the
// fast 8-bytes-at-a-time path and byte-at-a-time pieces.

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>

#include "dref/persist/crc32c.hpp"

using namespace dref;

TEST_CASE("crc32c of \"123456789\" is the standard check value") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
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
  CHECK(crc32c(zeros) == 0x8A9136AAu);
  CHECK(crc32c(ones) == 0x62A8AB43u);
  CHECK(crc32c(up) == 0x46DD794Eu);
  CHECK(crc32c(down) == 0x113FDB5Cu);
}

TEST_CASE("crc32c computed in pieces equals crc32c of the whole, at any "
          "alignment") {
  std::mt19937 gen{42};
  std::string data(301, '\0');
  for (auto& c : data)
    c = static_cast<char>(gen());
  for (size_t start = 0; start < 9; ++start) {
    std::string_view whole{data.data() + start, data.size() - start};
    auto expected = crc32c(whole);
    for (size_t split = 0; split <= whole.size(); ++split) {
      auto head = crc32c(whole.substr(0, split));
      auto all = crc32c_extend(head, whole.data() + split,
                               whole.size() - split);
      REQUIRE_MESSAGE(all == expected, "start " << start << ", split "
                                                << split);
    }
    // Byte by byte only ever takes the slow path.
    uint32_t bytewise = 0;
    for (char c : whole)
      bytewise = crc32c_extend(bytewise, &c, 1);
    CHECK(bytewise == expected);
  }
}

TEST_CASE("flipping any single bit changes crc32c") {
  std::string data = "a durable actor's state, sixty-four bytes long, more or less!!";
  auto good = crc32c(data);
  for (size_t i = 0; i < data.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = data;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      REQUIRE(crc32c(bad) != good);
    }
}
