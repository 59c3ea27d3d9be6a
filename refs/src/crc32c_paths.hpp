#pragma once

#include <cstddef>
#include <cstdint>

namespace dref::internal {

// The two ways `dref::crc32c_extend` computes its result, apart so that tests
// can check each against known answers whichever one this CPU picks. Same
// contract as `crc32c_extend`. Pure: safe from any thread.

/// The table path, eight bytes per step ("slicing by eight"); any CPU.
uint32_t crc32c_extend_sliced(uint32_t crc, const void* data,
                              size_t size) noexcept;

/// Whether this CPU has the SSE 4.2 `crc32` instruction (x86-64 only).
bool crc32c_hardware_available() noexcept;

/// The `crc32` instruction path.
/// @pre `crc32c_hardware_available()`
uint32_t crc32c_extend_hardware(uint32_t crc, const void* data,
                                size_t size) noexcept;

} // namespace dref::internal
