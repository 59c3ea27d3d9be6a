// Unit tests of ref_descriptor's two formats: format 2 (cluster protocol 9)
// carries the type of the value a ref names; format 1, written before and
// kept in durable states and kept values on disk, still reads. And of a
// ref read as another type than its descriptor names: adopted like any
// ref, but remembered as mismatched, so that its reads fail.

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"
#include "caf/deep_to_string.hpp"

#include "dref/refs/error.hpp"
#include "dref/refs/ref.hpp"
#include "dref/refs/ref_descriptor.hpp"

using namespace dref;

namespace {

// Owns objects of owner 0xaa at 127.0.0.1:5000 and counts local refs.
class test_context : public ref_context {
public:
  void add_local_ref(const object_id& id) noexcept override {
    ++refs[id];
  }
  void remove_local_ref(const object_id& id) noexcept override {
    --refs[id];
  }
  void describe(const object_id& id, ref_descriptor& out) const override {
    out.id = id;
    out.owner = process_address{0xaa, "127.0.0.1", 5000};
  }
  std::map<object_id, int> refs;
};

const object_id id7{0xaa, 7};

std::vector<char> from_hex(const std::string& hex) {
  std::vector<char> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string to_hex(const std::vector<char>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto c : bytes) {
    auto b = static_cast<unsigned char>(c);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// The descriptor of id7 in format 1 (hold 0, no holder), as written before
// protocol 9: id (owner, seq), owner (process, host, port), hold, holder.
const std::string format1_hex = "00000000000000aa"
                                "0000000000000007"
                                "00000000000000aa"
                                "09"
                                "3132372e302e302e31"
                                "1388"
                                "0000000000000000"
                                "0000000000000000"
                                "00"
                                "0000";

// A value holding a ref, as a durable state of a build before protocol 9
// keeps it on disk.
struct box {
  std::string label;
  ref<std::string> item;
  int32_t tail = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, box& x) {
  return f(caf::meta::type_name("test.box"), x.label, x.item, x.tail);
}

} // namespace

// Serializes `d` with CAF's binary serializer.
std::vector<char> bytes_of(ref_descriptor d) {
  std::vector<char> bytes;
  caf::binary_serializer sink{nullptr, bytes};
  REQUIRE_FALSE(sink(d));
  return bytes;
}

// Reads a descriptor from all of `bytes`.
ref_descriptor descriptor_of(const std::vector<char>& bytes) {
  ref_descriptor d;
  caf::binary_deserializer source{nullptr, bytes};
  REQUIRE_FALSE(source(d));
  CHECK_EQ(source.remaining(), 0u);
  return d;
}

TEST_CASE("a descriptor is written in format 2: the marker, its type, the "
          "id, flags, the owner's host and port") {
  ref_descriptor d;
  d.id = id7;
  d.owner = process_address{0xaa, "127.0.0.1", 5000};
  d.type = "std::string";
  auto bytes = bytes_of(d);
  CHECK_EQ(to_hex(bytes), "ffffffffffffffff"         // format 2
                          "0b"                       // type
                          "7374643a3a737472696e67"   // "std::string"
                          "00000000000000aa"         // id.owner
                          "0000000000000007"         // id.seq
                          "01"                       // owner_is_id_owner
                          "09"                       // owner.host
                          "3132372e302e302e31"       // "127.0.0.1"
                          "1388");                   // owner.port
  CHECK(descriptor_of(bytes) == d);
}

TEST_CASE("a descriptor in format 2 keeps an owner of another incarnation "
          "and a transit hold") {
  ref_descriptor d;
  d.id = id7;
  d.owner = process_address{0, "", 0}; // owner unknown (a kept copy's refs)
  d.hold = 42;
  d.holder = process_address{0xbb, "10.0.0.2", 7000};
  d.type = "int32";
  auto bytes = bytes_of(d);
  CHECK_EQ(to_hex(bytes), "ffffffffffffffff"
                          "05"
                          "696e743332" // "int32"
                          "00000000000000aa"
                          "0000000000000007"
                          "02"                           // has_transit_hold
                          "0000000000000000" "00" "0000" // the whole owner
                          "000000000000002a"             // hold
                          "00000000000000bb"             // holder
                          "08"
                          "31302e302e302e32"
                          "1b58");
  CHECK(descriptor_of(bytes) == d);
}

TEST_CASE("a descriptor with flags this build does not know is refused") {
  ref_descriptor d;
  d.id = id7;
  d.owner = process_address{0xaa, "127.0.0.1", 5000};
  auto bytes = bytes_of(d);
  bytes[8 + 1 + 16] |= 0x04; // the flags byte: after marker, type, id
  ref_descriptor back;
  caf::binary_deserializer source{nullptr, bytes};
  auto err = source(back);
  REQUIRE(err);
  CHECK_EQ(err.category(), refs_category);
}

TEST_CASE("a descriptor in the frozen format 1 still decodes, without a "
          "type") {
  auto bytes = from_hex(format1_hex);
  ref_descriptor d;
  d.type = "left over";
  caf::binary_deserializer source{nullptr, bytes};
  REQUIRE_FALSE(source(d));
  CHECK_EQ(source.remaining(), 0u);
  CHECK(d.id == id7);
  CHECK_EQ(d.owner.process, 0xaau);
  CHECK_EQ(d.owner.host, "127.0.0.1");
  CHECK_EQ(d.owner.port, 5000);
  CHECK_EQ(d.hold, 0u);
  CHECK(d.type.empty());
}

TEST_CASE("a value holding a ref in format 1 reads back whole, its ref "
          "untyped and not refused") {
  // label "box", the descriptor, tail 5: the tail is read right only if
  // the descriptor took exactly its bytes.
  auto bytes = from_hex("03626f78" + format1_hex + "00000005");
  auto ctx = std::make_shared<test_context>();
  box back;
  {
    ref_read_scope scope{ctx};
    caf::binary_deserializer source{nullptr, bytes};
    REQUIRE_FALSE(source(back));
    CHECK_EQ(source.remaining(), 0u);
  }
  CHECK_EQ(back.label, "box");
  CHECK_EQ(back.tail, 5);
  CHECK(back.item.valid());
  CHECK(back.item.id() == id7);
  CHECK(back.item.mismatched_type() == nullptr);
  CHECK_FALSE(check_type(back.item));
  CHECK_EQ(ctx->refs[id7], 1);
  back.item.reset();
  CHECK_EQ(ctx->refs[id7], 0);
}

TEST_CASE("a ref read as another type is adopted but remembers the type "
          "its descriptor names") {
  auto ctx = std::make_shared<test_context>();
  std::vector<char> bytes;
  {
    ref<std::string> text{id7, ctx};
    ctx->refs[id7] = 1;
    std::vector<ref_base> seen;
    ref_collect_scope collecting{seen};
    caf::binary_serializer sink{nullptr, bytes};
    REQUIRE_FALSE(sink(text));
  }
  CHECK_EQ(ctx->refs[id7], 0);
  ref<int64_t> number;
  {
    ref_read_scope scope{ctx};
    caf::binary_deserializer source{nullptr, bytes};
    REQUIRE_FALSE(source(number)); // reading the bytes is fine
  }
  CHECK(number.valid());
  CHECK_EQ(ctx->refs[id7], 1); // counted like any ref
  REQUIRE(number.mismatched_type() != nullptr);
  CHECK_EQ(*number.mismatched_type(), "std::string");
  auto err = check_type(number);
  REQUIRE(err);
  CHECK_EQ(err.category(), refs_category);
  CHECK_EQ(err.code(), static_cast<uint8_t>(refs_errc::type_mismatch));
  CHECK_EQ(caf::to_string(err.context()),
           caf::to_string(caf::make_message(std::string{
             "a ref<int64> names a value of type std::string"})));
  // A copy remembers it too; written out, it names the value's real type.
  auto copy = number;
  REQUIRE(copy.mismatched_type() != nullptr);
  std::vector<char> again;
  {
    std::vector<ref_base> seen;
    ref_collect_scope collecting{seen};
    caf::binary_serializer sink{nullptr, again};
    REQUIRE_FALSE(sink(copy));
  }
  ref<std::string> right;
  {
    ref_read_scope scope{ctx};
    caf::binary_deserializer source{nullptr, again};
    REQUIRE_FALSE(source(right));
  }
  CHECK(right.mismatched_type() == nullptr);
  CHECK_FALSE(check_type(right));
  // Reset, moved from or released, a ref forgets it.
  auto moved = std::move(copy);
  CHECK(copy.mismatched_type() == nullptr); // NOLINT(bugprone-use-after-move)
  CHECK(moved.mismatched_type() != nullptr);
  moved.reset();
  CHECK(moved.mismatched_type() == nullptr);
  number.reset();
  right.reset();
  CHECK_EQ(ctx->refs[id7], 0);
}

TEST_CASE("a rendered descriptor shows its type and no format marker") {
  ref_descriptor d;
  d.id = id7;
  d.type = "int32";
  auto text = caf::deep_to_string(d);
  CHECK(text.find("int32") != std::string::npos);
  CHECK(text.find("18446744073709551615") == std::string::npos);
}
