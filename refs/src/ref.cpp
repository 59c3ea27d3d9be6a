#include "dref/refs/ref.hpp"

namespace dref {

ref_context::~ref_context() {
  // nop
}

} // namespace dref
