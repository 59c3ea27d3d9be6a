#include "dref/persist/fault_injecting_store.hpp"

namespace dref {

fault_injecting_store::fault_injecting_store(checkpoint_store& inner)
  : inner_(inner) {
  // nop
}

void fault_injecting_store::fail_next_writes(size_t n, persist_errc code) {
  std::lock_guard<std::mutex> guard{mtx_};
  failing_writes_ = n;
  write_code_ = code;
}

void fault_injecting_store::fail_next_reads(size_t n, persist_errc code) {
  std::lock_guard<std::mutex> guard{mtx_};
  failing_reads_ = n;
  read_code_ = code;
}

fault_injecting_store::statistics fault_injecting_store::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

caf::error fault_injecting_store::write(const write_batch& batch) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ++stats_.write_calls;
    if (failing_writes_ > 0) {
      --failing_writes_;
      ++stats_.injected_write_faults;
      return make_error(write_code_, "injected fault: write of "
                                       + std::to_string(batch.ops.size())
                                       + " ops");
    }
    ++stats_.forwarded_writes;
  }
  return inner_.write(batch);
}

caf::error fault_injecting_store::take_read_fault(const std::string& what) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (failing_reads_ == 0)
    return caf::none;
  --failing_reads_;
  ++stats_.injected_read_faults;
  return make_error(read_code_, "injected fault: " + what);
}

caf::expected<std::optional<std::string>>
fault_injecting_store::read(column_family cf, const std::string& key) const {
  if (auto err = take_read_fault(key_name(cf, key)))
    return err;
  return inner_.read(cf, key);
}

caf::expected<std::vector<std::string>>
fault_injecting_store::keys(column_family cf, const std::string& prefix) const {
  if (auto err = take_read_fault(key_name(cf, prefix + "*")))
    return err;
  return inner_.keys(cf, prefix);
}

} // namespace dref
