#include "log_tail_check.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <vector>

#include "dref/persist/error.hpp"
#include "dref/refs/crc32c.hpp"

namespace dref::internal {

namespace {

// LevelDB's log format, as RocksDB writes it without log recycling: the
// file is cut into 32 KiB blocks; each record fragment has a 7-byte header
// (masked CRC-32C of type byte and payload: 4 bytes little-endian; payload
// length: 2 bytes little-endian; type: 1 byte) and never crosses a block;
// a block's last < 7 bytes are zero padding.
constexpr size_t block_size = 32768;
constexpr size_t header_size = 7;
// Full, first, middle and last fragments. Other types (zero padding,
// recyclable records, WAL metadata) are left to RocksDB.
constexpr unsigned char min_type = 1;
constexpr unsigned char max_type = 4;

uint32_t unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

uint32_t load_le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16
         | uint32_t{p[3]} << 24;
}

// Checks the record at `pos` of the file's final block `block` (holding
// `size` bytes), whose length reaches past the end of the file. Lengths
// that differ from the stored one in a single byte (one damaged byte) are
// tried against the CRC, which keeps the odds that a torn record matches
// by chance near 2^-23.
caf::error check_last_record(const std::string& file, uint64_t block_offset,
                             const unsigned char* block, size_t size,
                             size_t pos) {
  auto h = block + pos;
  size_t len = size_t{h[4]} | size_t{h[5]} << 8;
  unsigned char type = h[6];
  auto expected = unmask(load_le32(h));
  size_t limit = size - pos - header_size;
  uint32_t crc = crc32c_extend(0, &type, 1);
  auto payload = h + header_size;
  for (size_t n = 0;; ++n) {
    bool one_byte_off = (n & 0xFF00) == (len & 0xFF00)
                        || (n & 0x00FF) == (len & 0x00FF);
    if (one_byte_off && crc == expected)
      return make_error(persist_errc::checkpoint_corrupt,
                        file + ": the length of the record at offset "
                          + std::to_string(block_offset + pos) + " says "
                          + std::to_string(len)
                          + " bytes, its checksum matches "
                          + std::to_string(n));
    if (n == limit)
      return caf::none;
    crc = crc32c_extend(crc, payload + n, 1);
  }
}

} // namespace

caf::error check_log_tail(const std::string& file) {
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return make_error(persist_errc::io_error, file + ": cannot open");
  // Records never cross blocks, so one block at a time is enough.
  std::vector<unsigned char> block(block_size);
  for (uint64_t offset = 0;; offset += block_size) {
    in.read(reinterpret_cast<char*>(block.data()), block_size);
    auto size = static_cast<size_t>(in.gcount());
    if (in.bad())
      return make_error(persist_errc::io_error, file + ": read failed");
    bool last_block = size < block_size || in.peek() == EOF;
    size_t pos = 0;
    while (block_size - pos >= header_size) { // else: block trailer
      if (size - pos < header_size)
        return caf::none; // end of file, or a torn header: nothing to check
      auto h = block.data() + pos;
      size_t len = size_t{h[4]} | size_t{h[5]} << 8;
      if (h[6] < min_type || h[6] > max_type)
        return caf::none; // not ours to judge
      if (pos + header_size + len <= size) {
        pos += header_size + len;
        continue;
      }
      // The record reaches past the data we have.
      if (!last_block)
        return caf::none; // past its block: RocksDB reports this itself
      return check_last_record(file, offset, block.data(), size, pos);
    }
    if (last_block)
      return caf::none;
  }
}

} // namespace dref::internal
