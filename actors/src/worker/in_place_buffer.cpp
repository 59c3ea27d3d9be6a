#include "worker/in_place_buffer.hpp"

#include <cstring>
#include <mutex>
#include <new>

#include "dref/actors/serialization.hpp"
#include "dref/store/error.hpp"
#include "dref/store/node_client.hpp"

#include "worker/worker_context.hpp"

namespace dref::internal {

namespace {

/// The shared handle of a `buffer_writer` in the node store and of every
/// buffer made from it: the segment being written, then (once sealed) this
/// process's pinned read-only view of it.
/// Who touches it: any holder of the handle, under `mtx`.
/// Who frees: the last holder; unsealed, the writer's destructor aborts
/// the object (unmaps, then asks the store to remove it).
struct in_place_segment {
  std::mutex mtx;
  node_client::writer writer; // guarded by mtx; empty once sealed
  buffer sealed;              // guarded by mtx; set when sealed
  char* data = nullptr;       // the value's bytes (after the header)
  size_t size = 0;            // the value's bytes
  uint32_t elem_size = 0;     // recorded in the header (0: plain bytes)
  uint64_t total = 0;         // header + size: the segment's value size
};

/// Marks handles of in-place segments (found with std::get_deleter).
struct in_place_deleter {
  in_place_segment* seg = nullptr;
  void operator()(in_place_segment* p) const noexcept {
    delete p;
  }
};

} // namespace

caf::expected<buffer_writer> make_heap_writer(size_t size,
                                              uint32_t elem_size) {
  // operator new[] aligns to __STDCPP_DEFAULT_NEW_ALIGNMENT__, at least
  // buffer_alignment (static_assert in buffer.hpp).
  std::shared_ptr<char> bytes{new (std::nothrow) char[size > 0 ? size : 1],
                              std::default_delete<char[]>{}};
  if (!bytes)
    return make_error(store_errc::store_full,
                      "cannot allocate " + std::to_string(size)
                        + " bytes on the heap");
  auto data = bytes.get();
  return buffer_writer{data, size, elem_size, false, std::move(bytes)};
}

caf::expected<buffer_writer> make_in_place_writer(worker_context& w,
                                                  size_t size,
                                                  uint32_t elem_size) {
  // The serialized form of a dref::buffer (detail::save_buffer): its
  // header, then the bytes; the value starts 64-byte aligned in the
  // segment, so the bytes are buffer_alignment aligned.
  static_assert(detail::buffer_header_size % buffer_alignment == 0);
  uint64_t total = detail::buffer_header_size + size;
  if (!w.has_node() || total <= w.settings().inline_limit)
    return make_heap_writer(size, elem_size);
  auto id = w.new_object_id();
  auto wr = w.create_in_node(id, total);
  if (!wr)
    return make_heap_writer(size, elem_size); // e.g. store_full
  detail::encode_buffer_header(wr->data(), size, elem_size);
  auto seg = new in_place_segment;
  seg->data = wr->data() + detail::buffer_header_size;
  seg->size = size;
  seg->elem_size = elem_size;
  seg->total = total;
  seg->writer = std::move(*wr);
  std::shared_ptr<in_place_segment> handle{seg, in_place_deleter{seg}};
  return buffer_writer{seg->data, size, elem_size, true, std::move(handle)};
}

std::optional<uint64_t> seal_in_place(const buffer& x, const object_id& id) {
  auto d = std::get_deleter<in_place_deleter>(x.handle());
  if (d == nullptr || d->seg == nullptr)
    return std::nullopt;
  auto& seg = *d->seg;
  std::lock_guard<std::mutex> guard{seg.mtx};
  if (x.data() != seg.data || x.size() != seg.size
      || x.elem_size() != seg.elem_size || seg.writer.data() == nullptr)
    return std::nullopt;
  auto sealed = seg.writer.seal_as(id);
  if (!sealed)
    return std::nullopt; // the bytes stay mapped: serialized as usual
  seg.sealed = std::move(*sealed);
  return seg.total;
}

} // namespace dref::internal
