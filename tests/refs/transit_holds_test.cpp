// Unit tests of transit_holds: refs kept for receivers of plain messages.

#include <doctest/doctest.h>

#include <map>
#include <memory>

#include "dref/refs/transit_holds.hpp"

using namespace dref;

namespace {

class tally : public ref_context {
public:
  void add_local_ref(const object_id& id) noexcept override {
    ++counts[id];
  }
  void remove_local_ref(const object_id& id) noexcept override {
    --counts[id];
  }
  std::map<object_id, int> counts;
};

} // namespace

TEST_CASE("a transit hold keeps its ref until released or expired") {
  auto ctx = std::make_shared<tally>();
  const object_id a{5, 1}, b{5, 2};
  ctx->add_local_ref(a);
  ctx->add_local_ref(b);
  ref_base ra{a, ctx}, rb{b, ctx};
  transit_holds holds;
  auto now = transit_holds::clock_type::now();
  auto ta = holds.hold(ra, now + std::chrono::seconds{60});
  auto tb = holds.hold(rb, now + std::chrono::seconds{1});
  CHECK_NE(ta, tb);
  CHECK_EQ(holds.size(), 2u);
  ra.reset();
  rb.reset();
  CHECK_EQ(ctx->counts[a], 1); // only the holds count now
  holds.expire(now + std::chrono::seconds{2});
  CHECK_EQ(ctx->counts[b], 0);
  CHECK_EQ(holds.size(), 1u);
  holds.release({tb, ta, 999}); // already gone / unknown: ignored
  CHECK_EQ(ctx->counts[a], 0);
  CHECK_EQ(holds.size(), 0u);
  ctx->add_local_ref(a);
  holds.hold(ref_base{a, ctx}, now);
  holds.clear();
  CHECK_EQ(holds.size(), 0u);
}
