#pragma once

#include <cstdint>
#include <optional>

#include "caf/expected.hpp"

#include "dref/actors/buffer_writer.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/store/buffer.hpp"

namespace dref::internal {

class worker_context;

/// A `buffer_writer` for task code in worker `w`: a node-store segment
/// when `w` has a node store and the serialized buffer (its 16-byte header,
/// then `size` bytes) is above the inline limit; on the heap otherwise or
/// when the store refuses (e.g. `store_full`). The finished buffer records
/// `elem_size` (0: plain bytes; the caller checked that `size` is a
/// multiple of it).
///
/// The segment is created under a fresh id of `w` (`new_object_id`) and
/// already holds the header, so the segment's value is exactly the
/// serialized form of the finished `dref::buffer`; `seal_in_place` later
/// seals it under the id of the value it becomes.
caf::expected<buffer_writer> make_in_place_writer(worker_context& w,
                                                  size_t size,
                                                  uint32_t elem_size);

/// A `buffer_writer` on the heap. Errors: `store_full` (allocation failed).
caf::expected<buffer_writer> make_heap_writer(size_t size,
                                              uint32_t elem_size);

/// If `x` is the whole of an unsealed node-store segment made by
/// `make_in_place_writer` (with the same element size): seals it as object `id` (one request to the
/// store, no byte copied; this process keeps its mapping read-only and
/// pinned while copies of `x` live) and returns the value's size in the
/// store (the serialized size). Otherwise (another buffer, part of one,
/// already sealed, or the store refused the seal) nothing happens and the
/// caller serializes `x` as usual.
/// Thread safety: any thread; one seal per segment.
std::optional<uint64_t> seal_in_place(const buffer& x, const object_id& id);

} // namespace dref::internal
