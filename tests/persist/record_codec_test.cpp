// The checkpoint record codec: checkpoints survive encoding, and every kind
// of damage a decoder can see (flipped bytes, a wrong CRC, an unknown or
// missing format version, a record under the wrong key) gives a clear
// error naming the actor instead of a wrong state.

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/error.hpp"
#include "dref/persist/record_codec.hpp"

#include "persist_test_util.hpp"

using namespace dref;

namespace {

checkpoint sample() {
  checkpoint x;
  x.actor = "acct-42";
  x.version = 7;
  x.state = std::string{"balance=100\0\xff", 13};
  x.sequence_numbers = {{"caller-a", 3}, {"caller-b", uint64_t{1} << 40}};
  return x;
}

// sample() with a kept reply (format version 2).
checkpoint sample_v2() {
  auto x = sample();
  x.replies = {{"caller-a", std::string{"reply-of-3\0\x01", 12}}};
  return x;
}

// Flips one bit in the first occurrence of `needle` in `bytes`.
std::string flip_inside(std::string bytes, const std::string& needle) {
  auto pos = bytes.find(needle);
  REQUIRE(pos != std::string::npos);
  bytes[pos + needle.size() / 2] ^= 0x04;
  return bytes;
}

// Checks that `res` failed with `code` and that the error names the actor.
template <class T>
void check_fails(const caf::expected<T>& res, persist_errc code,
                 const std::string& actor) {
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), code), test::describe(res));
  CHECK_MESSAGE(test::context_of(res.error()).find(actor) != std::string::npos,
                test::describe(res));
}

std::string unhex(const std::string& hex) {
  std::string result;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    result.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return result;
}

} // namespace

TEST_CASE("a checkpoint survives encoding and decoding unchanged") {
  auto x = sample();
  auto res = record_codec::decode(x.actor, record_codec::encode(x));
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == x);
}

TEST_CASE("an empty checkpoint survives encoding and decoding unchanged") {
  checkpoint x;
  x.actor = "";
  auto res = record_codec::decode("", record_codec::encode(x));
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == x);
}

TEST_CASE("a record in the frozen version-1 format still decodes") {
  // Written by the first version of the codec; never regenerate it: a
  // failure here means the format changed without a version bump.
  auto bytes = unhex("08011207616363742d34321807220d62616c616e63653d3130"
                     "3000ff2a110a0863616c6c65722d62108080808080202a0c0a"
                     "0863616c6c65722d61100335bd36d138");
  auto res = record_codec::decode("acct-42", bytes);
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == sample());
}

TEST_CASE("a checkpoint with replies is written in format version 2 and "
          "survives decoding") {
  auto x = sample_v2();
  auto bytes = record_codec::encode(x);
  REQUIRE(bytes.substr(0, 2) == std::string{"\x08\x02"});
  auto res = record_codec::decode(x.actor, bytes);
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == x);
  // Without replies the same checkpoint is written in version 1.
  x.replies.clear();
  CHECK(record_codec::encode(x).substr(0, 2) == std::string{"\x08\x01"});
}

TEST_CASE("a record in the frozen version-2 format still decodes") {
  // Written by the first version-2 codec; never regenerate it.
  auto bytes = unhex("08021207616363742d34321807220d62616c616e63653d3130"
                     "3000ff2a0c0a0863616c6c65722d6110032a110a0863616c6c"
                     "65722d621080808080802035bf4a28953a180a0863616c6c65"
                     "722d61120c7265706c792d6f662d330001");
  auto res = record_codec::decode("acct-42", bytes);
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == sample_v2());
}

TEST_CASE("a flipped byte in a reply gives checkpoint_corrupt naming the "
          "actor") {
  auto x = sample_v2();
  auto bad = flip_inside(record_codec::encode(x), "reply-of-3");
  check_fails(record_codec::decode(x.actor, bad),
              persist_errc::checkpoint_corrupt, "acct-42");
}

TEST_CASE("a version-1 record carrying replies gives checkpoint_corrupt") {
  auto x = sample_v2();
  auto bytes = record_codec::encode(x);
  bytes[1] = '\x01';
  check_fails(record_codec::decode(x.actor, bytes),
              persist_errc::checkpoint_corrupt, "acct-42");
}

// sample_v2() whose state refers to two kept values (format version 3).
checkpoint sample_v3() {
  auto x = sample_v2();
  x.refs = {"00000000000000aa:1/acct-42", "00000000000000bb:7/acct-42"};
  return x;
}

TEST_CASE("a checkpoint with refs is written in format version 3 and "
          "survives decoding") {
  auto x = sample_v3();
  auto bytes = record_codec::encode(x);
  REQUIRE(bytes.substr(0, 2) == std::string{"\x08\x03"});
  auto res = record_codec::decode(x.actor, bytes);
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == x);
  CHECK(res->refs == x.refs); // in the order written
  // Without refs the same checkpoint is written in version 2.
  x.refs.clear();
  CHECK(record_codec::encode(x).substr(0, 2) == std::string{"\x08\x02"});
}

kept_value sample_value() {
  return kept_value{std::string{"payload\0\xff\x01", 10},
                    {"00000000000000cc:3", "00000000000000dd:4"}};
}

TEST_CASE("a record in the frozen version-3 format still decodes") {
  // Written by the first version-3 codec; never regenerate it.
  auto bytes = unhex("08031207616363742d34321807220d62616c616e63653d3130"
                     "3000ff2a0c0a0863616c6c65722d6110032a110a0863616c6c"
                     "65722d6210808080808020351aeaeb7e3a180a0863616c6c65"
                     "722d61120c7265706c792d6f662d330001421a303030303030"
                     "303030303030303061613a312f616363742d3432421a303030"
                     "303030303030303030303062623a372f616363742d3432");
  auto res = record_codec::decode("acct-42", bytes);
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == sample_v3());
}

TEST_CASE("a kept value in the frozen version-1 format still decodes") {
  // Written by the first codec of kept values; never regenerate it.
  auto bytes = unhex("0801121a303030303030303030303030303061613a312f6163"
                     "63742d34321a0a7061796c6f616400ff01255c866e682a1230"
                     "3030303030303030303030303063633a332a12303030303030"
                     "303030303030303064643a34");
  auto res = record_codec::decode_value("00000000000000aa:1/acct-42", bytes);
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == sample_value());
}

TEST_CASE("a flipped byte in a ref key gives checkpoint_corrupt naming the "
          "actor") {
  auto x = sample_v3();
  auto bad = flip_inside(record_codec::encode(x), "00000000000000bb:7");
  check_fails(record_codec::decode(x.actor, bad),
              persist_errc::checkpoint_corrupt, "acct-42");
}

TEST_CASE("a version-2 record carrying refs gives checkpoint_corrupt") {
  auto x = sample_v3();
  auto bytes = record_codec::encode(x);
  bytes[1] = '\x02';
  check_fails(record_codec::decode(x.actor, bytes),
              persist_errc::checkpoint_corrupt, "acct-42");
}

TEST_CASE("the checksum covers the refs of a checkpoint and their order") {
  auto x = sample_v3();
  auto crc = record_codec::checksum(x);
  auto y = x;
  std::swap(y.refs[0], y.refs[1]);
  CHECK(record_codec::checksum(y) != crc);
  y = x;
  y.refs.push_back("");
  CHECK(record_codec::checksum(y) != crc);
  y = x;
  y.refs[1] += "x";
  CHECK(record_codec::checksum(y) != crc);
}

TEST_CASE("a kept value survives encoding and decoding unchanged") {
  auto key = std::string{"00000000000000aa:1/acct-42"};
  auto x = sample_value();
  auto res = record_codec::decode_value(key, record_codec::encode_value(key, x));
  REQUIRE_MESSAGE(res, test::describe(res));
  CHECK(*res == x);
  auto empty = record_codec::decode_value(key, record_codec::encode_value(key, {}));
  REQUIRE_MESSAGE(empty, test::describe(empty));
  CHECK(*empty == kept_value{});
}

TEST_CASE("a damaged kept value gives checkpoint_corrupt naming its key") {
  auto key = std::string{"00000000000000aa:1/acct-42"};
  auto bytes = record_codec::encode_value(key, kept_value{"the-kept-payload", {"inner-ref-name"}});
  check_fails(record_codec::decode_value(key, flip_inside(bytes, "inner-ref")),
              persist_errc::checkpoint_corrupt, key);
  check_fails(record_codec::decode_value(key, flip_inside(bytes, "kept-payload")),
              persist_errc::checkpoint_corrupt, key);
  check_fails(record_codec::decode_value(key, bytes.substr(0, bytes.size() / 2)),
              persist_errc::checkpoint_corrupt, key);
  check_fails(record_codec::decode_value(key, bytes.substr(2)), // no version
              persist_errc::checkpoint_corrupt, key);
  auto other = std::string{"00000000000000aa:2/acct-42"};
  check_fails(record_codec::decode_value(other, bytes),
              persist_errc::checkpoint_corrupt, other);
  auto newer = bytes;
  REQUIRE(newer.substr(0, 2) == std::string{"\x08\x01"});
  newer[1] = '\x02';
  check_fails(record_codec::decode_value(key, newer),
              persist_errc::incompatible_state, key);
}

TEST_CASE("a flipped byte in the state gives checkpoint_corrupt naming the "
          "actor") {
  auto x = sample();
  auto bad = flip_inside(record_codec::encode(x), "balance=100");
  check_fails(record_codec::decode(x.actor, bad),
              persist_errc::checkpoint_corrupt, "acct-42");
}

TEST_CASE("a flipped byte in a caller id gives checkpoint_corrupt naming the "
          "actor") {
  auto x = sample();
  auto bad = flip_inside(record_codec::encode(x), "caller-a");
  check_fails(record_codec::decode(x.actor, bad),
              persist_errc::checkpoint_corrupt, "acct-42");
}

TEST_CASE("a record whose stored CRC does not match gives checkpoint_corrupt "
          "naming the actor") {
  auto x = sample();
  auto bytes = record_codec::encode(x);
  // The CRC is field 6, fixed32 (tag 0x35), serialized last.
  REQUIRE(bytes.size() > 5);
  REQUIRE(bytes[bytes.size() - 5] == '\x35');
  bytes.back() ^= 0x01;
  auto res = record_codec::decode(x.actor, bytes);
  check_fails(res, persist_errc::checkpoint_corrupt, "acct-42");
  CHECK(test::context_of(res.error()).find("CRC") != std::string::npos);
}

TEST_CASE("a record with the right CRC for another state is still caught") {
  // The CRC covers every field: moving a valid state under a higher version
  // number (a replayed or mixed-up record) fails too.
  auto x = sample();
  auto y = x;
  y.version = 8;
  auto bytes = record_codec::encode(x);
  // version 7 is field 3 as varint: tag 0x18, value 0x07.
  auto pos = bytes.find(std::string{"\x18\x07"});
  REQUIRE(pos != std::string::npos);
  bytes[pos + 1] = '\x08';
  check_fails(record_codec::decode(x.actor, bytes),
              persist_errc::checkpoint_corrupt, "acct-42");
}

TEST_CASE("an unknown format version gives incompatible_state naming the "
          "actor") {
  auto x = sample();
  auto bytes = record_codec::encode(x);
  // format_version is field 1 as varint (tag 0x08), serialized first.
  REQUIRE(bytes.substr(0, 2) == std::string{"\x08\x01"});
  bytes[1] = '\x04';
  auto res = record_codec::decode(x.actor, bytes);
  check_fails(res, persist_errc::incompatible_state, "acct-42");
  CHECK(test::context_of(res.error()).find("version 4") != std::string::npos);
}

TEST_CASE("a record without a format version gives checkpoint_corrupt") {
  auto x = sample();
  auto bytes = record_codec::encode(x);
  REQUIRE(bytes.substr(0, 2) == std::string{"\x08\x01"});
  check_fails(record_codec::decode(x.actor, bytes.substr(2)),
              persist_errc::checkpoint_corrupt, "acct-42");
}

TEST_CASE("bytes that are not a record give checkpoint_corrupt naming the "
          "actor") {
  check_fails(record_codec::decode("acct-1", std::string{"\xff\xff\xff\xff"}),
              persist_errc::checkpoint_corrupt, "acct-1");
  auto bytes = record_codec::encode(sample());
  check_fails(record_codec::decode("acct-42", bytes.substr(0, bytes.size() / 2)),
              persist_errc::checkpoint_corrupt, "acct-42");
  check_fails(record_codec::decode("acct-1", ""),
              persist_errc::checkpoint_corrupt, "acct-1");
}

TEST_CASE("a record stored under another actor's key gives "
          "checkpoint_corrupt") {
  auto res = record_codec::decode("acct-43", record_codec::encode(sample()));
  check_fails(res, persist_errc::checkpoint_corrupt, "acct-43");
  CHECK(test::context_of(res.error()).find("acct-42") != std::string::npos);
}

TEST_CASE("the checksum covers every field of a checkpoint") {
  auto x = sample();
  auto crc = record_codec::checksum(x);
  auto y = x;
  y.actor += "!";
  CHECK(record_codec::checksum(y) != crc);
  y = x;
  ++y.version;
  CHECK(record_codec::checksum(y) != crc);
  y = x;
  y.state += '\0';
  CHECK(record_codec::checksum(y) != crc);
  y = x;
  ++y.sequence_numbers["caller-a"];
  CHECK(record_codec::checksum(y) != crc);
  y = x;
  y.sequence_numbers["caller-c"] = 0;
  CHECK(record_codec::checksum(y) != crc);
  auto z = sample_v2();
  auto zcrc = record_codec::checksum(z);
  y = z;
  y.replies["caller-a"] += '!';
  CHECK(record_codec::checksum(y) != zcrc);
  y = z;
  y.replies["caller-b"] = "";
  CHECK(record_codec::checksum(y) != zcrc);
  // Lengths are part of the form: moving a byte between fields is caught.
  y = x;
  y.actor = "acct-4";
  y.state = "2" + x.state;
  CHECK(record_codec::checksum(y) != crc);
}

TEST_CASE("a checkpoint put in a batch reads back from a store") {
  memory_checkpoint_store store;
  write_batch b;
  put_checkpoint(b, sample());
  REQUIRE_FALSE(store.write(b));
  auto raw = store.read(column_family::actor_state, "acct-42");
  REQUIRE(raw);
  CHECK(raw->has_value());
  auto res = read_checkpoint(store, "acct-42");
  REQUIRE_MESSAGE(res, test::describe(res));
  REQUIRE(res->has_value());
  CHECK(**res == sample());
}

TEST_CASE("reading the checkpoint of an unknown actor gives an empty "
          "optional") {
  memory_checkpoint_store store;
  auto res = read_checkpoint(store, "nobody");
  REQUIRE(res);
  CHECK_FALSE(res->has_value());
}

TEST_CASE("reading a tampered checkpoint from a store gives "
          "checkpoint_corrupt naming the actor") {
  memory_checkpoint_store store;
  write_batch b;
  b.put(column_family::actor_state, "acct-42",
        flip_inside(record_codec::encode(sample()), "balance"));
  REQUIRE_FALSE(store.write(b));
  check_fails(read_checkpoint(store, "acct-42"),
              persist_errc::checkpoint_corrupt, "acct-42");
}
