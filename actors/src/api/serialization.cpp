#include "dref/actors/serialization.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "caf/binary_deserializer.hpp"

namespace dref {

namespace {

// The sources of the innermost `zero_copy_scope` of this thread, or null.
thread_local const std::vector<buffer>* zero_copy_sources = nullptr;

// The sink of the innermost `result_sink_scope` of this thread, or null.
thread_local result_sink* current_sink = nullptr;

// The source holding [p, p + n), or null.
const buffer* find_source(const char* p, size_t n) {
  if (zero_copy_sources == nullptr)
    return nullptr;
  for (auto& src : *zero_copy_sources) {
    auto first = src.data();
    if (first != nullptr && p >= first && n <= src.size()
        && static_cast<size_t>(p - first) <= src.size() - n)
      return &src;
  }
  return nullptr;
}

} // namespace

zero_copy_scope::zero_copy_scope(const std::vector<buffer>& sources) noexcept
  : prev_(zero_copy_sources) {
  zero_copy_sources = &sources;
}

zero_copy_scope::~zero_copy_scope() {
  zero_copy_sources = prev_;
}

result_sink_scope::result_sink_scope(result_sink* sink) noexcept
  : prev_(current_sink) {
  current_sink = sink;
}

result_sink_scope::~result_sink_scope() {
  current_sink = prev_;
}

namespace detail {

result_sink* current_result_sink() noexcept {
  return current_sink;
}

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the buffer header is little-endian; add byte swaps");
static_assert(sizeof(size_t) == sizeof(uint64_t),
              "a buffer's u64 byte count must fit a size_t");

caf::error buffer_error(std::string what) {
  return make_error(refs_errc::serialization_failed, std::move(what));
}

// Reads one byte as it lies in the stream.
caf::error read_byte(caf::deserializer& f, uint8_t& x) {
  return f.apply_raw(1, &x);
}

// A heap copy of the next `n` bytes of `f` as a buffer of `elem_size`.
caf::error load_copy(caf::deserializer& f, uint64_t n, uint32_t elem_size,
                     buffer& x) {
  auto bytes = std::make_shared<std::vector<char>>(static_cast<size_t>(n));
  if (n > 0)
    if (auto err = f.apply_raw(static_cast<size_t>(n), bytes->data()))
      return err;
  x = buffer{bytes->data(), bytes->size(), elem_size, std::move(bytes)};
  return caf::none;
}

// Reads `n` bytes of a buffer of `elem_size`: a view of a zero-copy source
// when the bytes lie in one (and a typed buffer's are aligned), else a copy.
caf::error load_bytes(caf::deserializer& f, uint64_t n, uint32_t elem_size,
                      buffer& x) {
  if (auto bd = dynamic_cast<caf::binary_deserializer*>(&f)) {
    if (n > bd->remaining())
      return buffer_error("a buffer of " + std::to_string(n)
                          + " bytes where only "
                          + std::to_string(bd->remaining()) + " are left");
    auto cur = reinterpret_cast<const char*>(bd->remainder().data());
    bool aligned = elem_size == 0
                   || reinterpret_cast<uintptr_t>(cur) % buffer_alignment
                        == 0;
    if (aligned)
      if (auto src = find_source(cur, static_cast<size_t>(n))) {
        // Zero copy: a view of the source, kept alive by its handle.
        x = buffer{cur, static_cast<size_t>(n), elem_size, src->handle()};
        bd->skip(static_cast<size_t>(n));
        return caf::none;
      }
  }
  return load_copy(f, n, elem_size, x);
}

// Reads the rest of a version-1 buffer, whose varint length began with
// `first` and, if `first` has its high bit set, `second`: decodes the
// varint as CAF writes it (7 bits a byte, least significant first, at most
// 32 bits), then the bytes.
caf::error load_v1(caf::deserializer& f, uint8_t first, uint8_t second,
                   buffer& x) {
  uint32_t n = first & 0x7f;
  if (first & 0x80) {
    uint8_t b = second;
    int shift = 7;
    for (;;) {
      n |= static_cast<uint32_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        break;
      shift += 7;
      if (shift > 28)
        return buffer_error("a buffer length longer than 5 bytes");
      if (auto err = read_byte(f, b))
        return err;
    }
  }
  return load_bytes(f, n, 0, x);
}

} // namespace

void encode_buffer_header(char* out, uint64_t size, uint32_t elem_size) {
  std::memset(out, 0, buffer_header_size);
  out[0] = static_cast<char>(0x80);
  out[1] = 0;
  out[2] = static_cast<char>(buffer_format_version);
  std::memcpy(out + 4, &elem_size, 4);
  std::memcpy(out + 8, &size, 8);
}

caf::error save_buffer(caf::serializer& f, const buffer& x) {
  auto elem_size = x.elem_size();
  if (elem_size != 0 && x.size() % elem_size != 0)
    return buffer_error("a typed buffer of " + std::to_string(x.size())
                        + " bytes is not a whole number of elements of "
                        + std::to_string(elem_size) + " bytes");
  char header[buffer_header_size];
  encode_buffer_header(header, x.size(), elem_size);
  if (auto err = f.apply_raw(buffer_header_size, header))
    return err;
  if (x.size() > 0)
    if (auto err = f.apply_raw(x.size(), const_cast<char*>(x.data())))
      return err;
  return caf::none;
}

caf::error load_buffer(caf::deserializer& f, buffer& x) {
  uint8_t first = 0;
  if (auto err = read_byte(f, first))
    return err;
  if ((first & 0x80) == 0)
    return load_v1(f, first, 0, x); // version 1, shorter than 128 bytes
  uint8_t second = 0;
  if (auto err = read_byte(f, second))
    return err;
  if (first != 0x80 || second != 0)
    return load_v1(f, first, second, x);
  // The mark of version 2 and later: the rest of the header.
  unsigned char rest[buffer_header_size - 2];
  if (auto err = f.apply_raw(sizeof(rest), rest))
    return err;
  auto version = rest[0];
  if (version != buffer_format_version)
    return buffer_error("a buffer of format version "
                        + std::to_string(version) + ", this build reads 1 "
                        + "and 2 only");
  uint32_t elem_size = 0;
  uint64_t size = 0;
  std::memcpy(&elem_size, rest + 2, 4);
  std::memcpy(&size, rest + 6, 8);
  if (elem_size != 0 && size % elem_size != 0)
    return buffer_error("a typed buffer of " + std::to_string(size)
                        + " bytes is not a whole number of elements of "
                        + std::to_string(elem_size) + " bytes");
  return load_bytes(f, size, elem_size, x);
}

} // namespace detail

} // namespace dref
