#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dref/refs/fwd.hpp"

namespace dref {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "location_list keeps its inline id in the upper half of a word");

/// The workers holding a copy of one object: a tiny set of worker ids in 8
/// bytes, because every owned object has one and almost all have at most
/// one copy (`owner_bytes_per_ref`, docs/performance.md).
///
/// Layout: one 64-bit word. Low bit 1: inline mode, bit 1 = size (0 or 1),
/// upper 32 bits = the id. Low bit 0: a pointer to a heap block
/// `{uint32 size, uint32 cap, ids...}`. Keeps insertion order.
///
/// Plain value type; not thread-safe (guarded with the ownership table).
class location_list {
public:
  location_list() noexcept = default;

  location_list(const location_list& other) : location_list() {
    for (auto w : other)
      push_back(w);
  }

  location_list(location_list&& other) noexcept : bits_(other.bits_) {
    other.bits_ = empty_bits;
  }

  location_list& operator=(const location_list& other) {
    if (this != &other) {
      location_list tmp{other};
      swap(tmp);
    }
    return *this;
  }

  location_list& operator=(location_list&& other) noexcept {
    location_list tmp{std::move(other)};
    swap(tmp);
    return *this;
  }

  ~location_list() {
    if (!is_inline())
      delete[] block();
  }

  void swap(location_list& other) noexcept {
    std::swap(bits_, other.bits_);
  }

  const worker_id* begin() const noexcept {
    if (is_inline())
      return reinterpret_cast<const worker_id*>(&bits_) + 1;
    return reinterpret_cast<const worker_id*>(block() + 2);
  }

  const worker_id* end() const noexcept {
    return begin() + size();
  }

  size_t size() const noexcept {
    return is_inline() ? (bits_ >> 1) & 1 : block()[0];
  }

  bool empty() const noexcept {
    return size() == 0;
  }

  const worker_id& front() const noexcept {
    return *begin();
  }

  void push_back(worker_id w) {
    if (is_inline()) {
      if (size() == 0) {
        bits_ = (uint64_t{w} << 32) | 0x3;
        return;
      }
      auto b = new uint32_t[2 + 4];
      b[0] = 1;
      b[1] = 4;
      b[2] = static_cast<uint32_t>(bits_ >> 32);
      bits_ = reinterpret_cast<uint64_t>(b);
    }
    auto b = block();
    if (b[0] == b[1]) {
      auto grown = new uint32_t[2 + b[1] * 2];
      std::memcpy(grown, b, (2 + b[0]) * sizeof(uint32_t));
      grown[1] = b[1] * 2;
      delete[] b;
      b = grown;
      bits_ = reinterpret_cast<uint64_t>(b);
    }
    b[2 + b[0]++] = w;
  }

  /// Removes the id at `pos` (a pointer obtained from begin/end).
  void erase(const worker_id* pos) noexcept {
    if (is_inline()) {
      bits_ = empty_bits;
      return;
    }
    auto first = const_cast<worker_id*>(pos);
    std::copy(first + 1, const_cast<worker_id*>(end()), first);
    --block()[0];
  }

  std::vector<worker_id> to_vector() const {
    return {begin(), end()};
  }

  friend bool operator==(const location_list& x,
                         const std::vector<worker_id>& y) {
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin());
  }

private:
  static constexpr uint64_t empty_bits = 0x1;

  bool is_inline() const noexcept {
    return (bits_ & 1) != 0;
  }

  uint32_t* block() const noexcept {
    return reinterpret_cast<uint32_t*>(bits_);
  }

  uint64_t bits_ = empty_bits;
};

} // namespace dref
