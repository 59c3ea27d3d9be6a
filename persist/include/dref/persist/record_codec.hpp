#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caf/expected.hpp"

#include "dref/persist/checkpoint_store.hpp"

namespace dref {

/// One durable actor's saved state: what a `checkpoint_record` on disk
/// holds, as a plain C++ value (no Protobuf type).
///
/// A plain value: owned by whoever holds it, not thread-safe.
struct checkpoint {
  /// The durable actor's name; also the record's key in `actor_state`.
  std::string actor;
  /// Goes up with every checkpoint the actor writes.
  uint64_t version = 0;
  /// The actor's serialized state.
  std::string state;
  /// Per caller id (UTF-8): the sequence number of the last call applied.
  std::map<std::string, uint64_t> sequence_numbers;
  /// Per caller id (UTF-8): the serialized reply of the call numbered
  /// `sequence_numbers[caller]` (format version 2).
  std::map<std::string, std::string> replies;
  /// The keys in `ref_values` of the values this state refers to through
  /// refs (format version 3); the durable-actor layer forms and reads them.
  std::vector<std::string> refs;

  friend bool operator==(const checkpoint& x, const checkpoint& y) {
    return x.actor == y.actor && x.version == y.version && x.state == y.state
           && x.sequence_numbers == y.sequence_numbers
           && x.replies == y.replies && x.refs == y.refs;
  }

  friend bool operator!=(const checkpoint& x, const checkpoint& y) {
    return !(x == y);
  }
};

/// A value a checkpoint refers to (a `ref_value_record` on disk, without
/// its key): the serialized value and the names of the values it refers to
/// in turn.
///
/// A plain value: owned by whoever holds it, not thread-safe.
struct kept_value {
  std::string value;
  std::vector<std::string> refs;

  friend bool operator==(const kept_value& x, const kept_value& y) {
    return x.value == y.value && x.refs == y.refs;
  }
};

/// Turns a `checkpoint` into the bytes of a `dref.persist.v1.checkpoint_record`
/// and back, checking the record's format version and CRC-32C on the way
/// in. The format is frozen: docs/checkpoint_format.md.
///
/// Stateless: every function is safe from any thread.
class record_codec {
public:
  /// The newest format version this build writes and reads. It reads every
  /// version from 1 on, and writes the oldest one that holds the record:
  /// 3 when `refs` is not empty, else 2 when `replies` is not empty, else 1.
  static constexpr uint32_t format_version = 3;

  /// The format version of the `ref_value_record`s this build writes (and
  /// the newest it reads).
  static constexpr uint32_t value_format_version = 1;

  /// The record bytes for `x`, with its format version and checksum.
  /// @pre every caller id in `x.sequence_numbers` is valid UTF-8.
  static std::string encode(const checkpoint& x);

  /// The checkpoint in `bytes`, a record stored under the key `actor`.
  /// Errors, each naming `actor`:
  /// - `checkpoint_corrupt`: the bytes do not parse, have no format
  ///   version, fail the CRC, or name another actor;
  /// - `incompatible_state`: an unknown format version.
  static caf::expected<checkpoint> decode(const std::string& actor,
                                          std::string_view bytes);

  /// The CRC-32C of `x` in the canonical form of the version `encode`
  /// writes for it (the `crc32c` field of its record;
  /// docs/checkpoint_format.md defines the forms).
  static uint32_t checksum(const checkpoint& x);

  /// The bytes of a `dref.persist.v1.ref_value_record` holding `x` under
  /// `key` (in `ref_values`), with its format version and checksum.
  static std::string encode_value(const std::string& key, const kept_value& x);

  /// The kept value in `bytes`, a `ref_value_record` stored under `key`.
  /// Errors, each naming the key: `checkpoint_corrupt` (does not parse, no
  /// format version, CRC mismatch, another key), `incompatible_state` (an
  /// unknown format version).
  static caf::expected<kept_value> decode_value(const std::string& key,
                                                std::string_view bytes);
};

/// Adds to `batch` a put of `x`'s record under `x.actor` in `actor_state`.
void put_checkpoint(write_batch& batch, const checkpoint& x);

/// Reads and decodes the checkpoint of `actor` from `store`: an empty
/// optional when there is none; the store's or the codec's error
/// otherwise.
caf::expected<std::optional<checkpoint>>
read_checkpoint(const checkpoint_store& store, const std::string& actor);

} // namespace dref
