#pragma once

#include <cstddef>
#include <cstdint>

#include "dref/actors/serialization.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/store/node_client.hpp"

namespace dref::internal {

class worker_context;

/// Writes one task's result (or one `dref::put`'s value) above the inline
/// limit straight into the node store (create, serialize in place, seal):
/// no heap blob of the value. Lives on the stack of the thread running the
/// task, for one value; not shared.
class node_result_sink : public result_sink {
public:
  node_result_sink(worker_context& refs, const object_id& id,
                   size_t threshold)
    : refs_(refs), id_(id), threshold_(threshold) {
    // nop
  }

  size_t threshold() const override {
    return threshold_;
  }

  char* open(size_t size) override;

  void close(bool ok) override;

  bool seal_in_place(const buffer& x) override;

  /// The result is sealed in the node store.
  bool written() const noexcept {
    return written_;
  }

  uint64_t size() const noexcept {
    return size_;
  }

private:
  worker_context& refs_;
  object_id id_;
  size_t threshold_;
  node_client::writer writer_;
  uint64_t size_ = 0;
  bool written_ = false;
};

} // namespace dref::internal
