#pragma once

// The frozen byte layouts of the store (docs/formats.md): the header of a
// shared-memory segment, the header of a spill file, and the transfer
// protocol's request and response headers. All integers little-endian.
// DO NOT CHANGE these layouts without bumping the version they carry and
// keeping a reader for the old one.

#include <cstdint>
#include <cstring>
#include <utility>

#include "dref/refs/object_id.hpp"

namespace dref::internal {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the store's formats are little-endian; add byte swaps");

inline void put_u32(unsigned char* p, uint32_t x) {
  std::memcpy(p, &x, 4);
}
inline void put_u64(unsigned char* p, uint64_t x) {
  std::memcpy(p, &x, 8);
}
inline uint32_t get_u32(const unsigned char* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  return x;
}
inline uint64_t get_u64(const unsigned char* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

/// Values start this far into a segment and a spill file (64: aligned for
/// any element type and a cache line).
constexpr size_t header_size = 64;

/// Segment header, version 1:
///   0  magic "DREFSEG\0"     8  u32 version (1)   12 u32 header size (64)
///   16 u64 owner             24 u64 seq           32 u64 value size
///   40 u32 element size      44 u32 state (0 writing, 1 sealed)
///   48 16 zero bytes; the value follows at 64.
constexpr char segment_magic[8] = {'D', 'R', 'E', 'F', 'S', 'E', 'G', '\0'};
constexpr uint32_t segment_version = 1;
constexpr uint32_t segment_writing = 0;
constexpr uint32_t segment_sealed = 1;
constexpr size_t segment_state_offset = 44;

/// Spill file header, version 1:
///   0  magic "DREFSPL\0"     8  u32 version (1)   12 u32 header size (64)
///   16 u64 owner             24 u64 seq           32 u64 value size
///   40 u32 element size      44 u32 CRC-32C of the value
///   48 12 zero bytes         60 u32 CRC-32C of bytes 0..59
///   the value follows at 64.
constexpr char spill_magic[8] = {'D', 'R', 'E', 'F', 'S', 'P', 'L', '\0'};
constexpr uint32_t spill_version = 1;

struct object_header {
  uint32_t version = 0;
  object_id id;
  uint64_t size = 0;
  uint32_t elem_size = 0;
  uint32_t state_or_crc = 0; // segment: state; spill file: value CRC
};

inline void encode_header(unsigned char* out, const char (&magic)[8],
                          uint32_t version, const object_header& h) {
  std::memset(out, 0, header_size);
  std::memcpy(out, magic, 8);
  put_u32(out + 8, version);
  put_u32(out + 12, static_cast<uint32_t>(header_size));
  put_u64(out + 16, h.id.owner);
  put_u64(out + 24, h.id.seq);
  put_u64(out + 32, h.size);
  put_u32(out + 40, h.elem_size);
  put_u32(out + 44, h.state_or_crc);
}

/// Decodes a header; false if the magic or the header size is wrong.
inline bool decode_header(const unsigned char* in, const char (&magic)[8],
                          object_header& h) {
  if (std::memcmp(in, magic, 8) != 0 || get_u32(in + 12) != header_size)
    return false;
  h.version = get_u32(in + 8);
  h.id.owner = get_u64(in + 16);
  h.id.seq = get_u64(in + 24);
  h.size = get_u64(in + 32);
  h.elem_size = get_u32(in + 40);
  h.state_or_crc = get_u32(in + 44);
  return true;
}

/// Transfer protocol, version 3 (one TCP connection, any number of
/// request/response pairs in sequence):
///   request  (40 bytes): 0 u32 magic 0x31545244 ("DRT1"), 4 u16 version (3),
///            6 u16 op (1 pull, 2 acquire, 3 stats, 4 release, 5 create,
///            6 seal, 7 abort, 8 free, 9 seal_as, 10 pull_stripe), 8 u64
///            owner, 16 u64 seq, 24 u64 argument (release: generation;
///            create: value size; pull_stripe: u32 stripe index at 24 and
///            u32 requested stripe count at 28; else 0), 32 u32 element
///            size (create), 36 u8 copy kind (create: 0 primary, 1
///            secondary), 37 3 zero bytes. Only seal_as has a request body:
///            16 bytes, u64 owner and u64 seq of the id to seal the object
///            under.
///   response (32 bytes): 0 u32 magic, 4 u16 status (0 ok, else a
///            store_errc value), 6 u16 op, 8 u64 body size, 16 u32 element
///            size, 20 u64 generation (acquire, seal_as: of the pin the
///            connection now holds; pull_stripe: the whole value's size),
///            28 u32 (pull_stripe: the stripe count the server chose, see
///            `stripe_count`; else 0); then the body: pull: the value;
///            pull_stripe: the stripe's bytes (`stripe_range`); acquire:
///            the segment's path; create: the path of the segment being
///            written; stats: u64 pulls served, u64 bytes served; release,
///            seal, seal_as, abort, free: nothing; any error: its message
///            text.
/// Version 3 added pull_stripe; version 2 added seal_as (version 1 had ops
/// 1-8).
/// Pins taken by `acquire` and objects being written after `create` belong
/// to the connection: when it closes, the server releases the pins and
/// aborts the unsealed objects.
constexpr uint32_t wire_magic = 0x31545244;
constexpr uint16_t wire_version = 3;
constexpr size_t wire_request_size = 40;
constexpr size_t wire_header_size = 32; // responses
enum class wire_op : uint16_t {
  pull = 1,
  acquire = 2,
  stats = 3,
  release = 4,
  create = 5,
  seal = 6,
  abort = 7,
  free = 8,
  seal_as = 9,
  pull_stripe = 10,
};

/// Striped pulls (op pull_stripe): a value is cut into `count` stripes,
/// each sent on its own connection, so that the copies out of and into
/// the sockets of both ends run on several cores at once. The server
/// chooses the count from the value's size and the count the client asks
/// for; the client reads it from the response to stripe 0 and asks for
/// stripes 1.. with the same requested count (the choice is a pure
/// function of both, so every connection agrees).
constexpr uint64_t min_stripe_bytes = uint64_t{2} << 20;
constexpr uint32_t max_stripes = 16;

inline uint32_t stripe_count(uint64_t size, uint32_t requested) {
  uint64_t n = requested == 0 ? 1 : requested;
  if (n > max_stripes)
    n = max_stripes;
  uint64_t by_size = size / min_stripe_bytes;
  if (by_size < 1)
    by_size = 1;
  return static_cast<uint32_t>(n < by_size ? n : by_size);
}

/// Byte range [first, second) of stripe `index` of `count` (index <
/// count); stripes after the first start on a 4 KiB multiple.
inline std::pair<uint64_t, uint64_t>
stripe_range(uint64_t size, uint32_t count, uint32_t index) {
  auto bound = [&](uint32_t i) -> uint64_t {
    if (i == 0)
      return 0;
    if (i >= count)
      return size;
    return (size / count * i) & ~uint64_t{4095};
  };
  return {bound(index), bound(index + 1)};
}

} // namespace dref::internal
