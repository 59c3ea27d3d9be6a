// Serialization of dref's own value types through the runtime's helpers
// (to_blob / from_blob), and their errors.

#include <doctest/doctest.h>

#include "dref/actors/serialization.hpp"
#include "dref/refs/error.hpp"
#include "dref/refs/object_id.hpp"

using namespace dref;

TEST_CASE("an object id survives a CAF serialization round trip") {
  object_id in{0x0123456789abcdefull, 99};
  blob buf;
  REQUIRE_FALSE(to_blob(in, buf));
  // Two fixed-width 64-bit integers.
  CHECK(buf.size() == 16);
  object_id out;
  REQUIRE_FALSE(from_blob(buf, out));
  CHECK(out == in);
  CHECK(out.owner == 0x0123456789abcdefull);
  CHECK(out.seq == 99);
}

TEST_CASE("a truncated object id fails to deserialize") {
  blob buf;
  REQUIRE_FALSE(to_blob(object_id{1, 2}, buf));
  buf.pop_back();
  object_id out;
  auto err = from_blob(buf, out);
  REQUIRE(err);
  CHECK(err.category() == refs_category);
  CHECK(err.code() == static_cast<uint8_t>(refs_errc::serialization_failed));
}
