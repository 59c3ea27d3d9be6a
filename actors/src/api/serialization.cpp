#include "dref/actors/serialization.hpp"

#include <memory>

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

caf::error save_buffer(caf::serializer& f, const buffer& x) {
  auto n = x.size();
  if (auto err = f.begin_sequence(n))
    return err;
  if (n > 0)
    if (auto err = f.apply_raw(n, const_cast<char*>(x.data())))
      return err;
  return f.end_sequence();
}

caf::error load_buffer(caf::deserializer& f, buffer& x) {
  size_t n = 0;
  if (auto err = f.begin_sequence(n))
    return err;
  if (auto bd = dynamic_cast<caf::binary_deserializer*>(&f)) {
    if (n > bd->remaining())
      return make_error(refs_errc::serialization_failed,
                        "a buffer longer than the bytes left");
    auto cur = reinterpret_cast<const char*>(bd->remainder().data());
    if (auto src = find_source(cur, n)) {
      // Zero copy: a view of the source, kept alive by its handle.
      x = buffer{cur, n, 0, src->handle()};
      bd->skip(n);
      return f.end_sequence();
    }
  }
  std::vector<char> bytes(n);
  if (n > 0)
    if (auto err = f.apply_raw(n, bytes.data()))
      return err;
  x = make_buffer(std::move(bytes));
  return f.end_sequence();
}

} // namespace detail

} // namespace dref
