#include "worker/result_sink.hpp"

#include "worker/in_place_buffer.hpp"
#include "worker/worker_context.hpp"

namespace dref::internal {

char* node_result_sink::open(size_t size) {
  if (written_ || writer_.data() != nullptr)
    return nullptr; // one result per task
  auto w = refs_.create_in_node(id_, size);
  if (!w)
    return nullptr; // e.g. store_full: serialized into a blob instead
  writer_ = std::move(*w);
  size_ = size;
  return writer_.data();
}

void node_result_sink::close(bool ok) {
  if (ok && !writer_.seal())
    written_ = true;
  else
    writer_.abort();
}

bool node_result_sink::seal_in_place(const buffer& x) {
  if (written_ || writer_.data() != nullptr)
    return false; // one result per task
  auto size = internal::seal_in_place(x, id_);
  if (!size)
    return false;
  written_ = true;
  size_ = *size;
  return true;
}

} // namespace dref::internal
