#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dref {

/// CRC-32C (Castagnoli polynomial 0x1EDC6F41, bit-reflected, initial value
/// and final XOR 0xFFFFFFFF), as used by iSCSI and ext4. Part of two frozen
/// formats, the checkpoint records (docs/checkpoint_format.md) and the
/// spill files (docs/formats.md): `crc32c("123456789")` is 0xE3069283.
///
/// It lives in refs/, the base library, because store/ and persist/ both
/// checksum with it and store/ must not link RocksDB and Protobuf through
/// persist/.
///
/// `crc32c_extend(crc32c(a), b)` equals `crc32c(a + b)`, so a checksum can
/// be computed over pieces. Uses the SSE 4.2 `crc32` instruction when the
/// CPU has it (~10x faster on 100 MiB spill files), else a table eight
/// bytes per step; both give the same result. Pure functions: safe from any
/// thread.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) noexcept;

/// CRC-32C of `bytes`.
inline uint32_t crc32c(std::string_view bytes) noexcept {
  return crc32c_extend(0, bytes.data(), bytes.size());
}

} // namespace dref
