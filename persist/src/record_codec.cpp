#include "dref/persist/record_codec.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>
#include <vector>

#include "checkpoint.pb.h"

#include "dref/persist/error.hpp"
#include "dref/refs/crc32c.hpp"

namespace dref {

namespace {

// Feeds the canonical form of a checkpoint into a running CRC-32C. Every
// integer is little-endian; every byte string is preceded by its length.
class crc_builder {
public:
  void add_u32(uint32_t x) {
    unsigned char buf[4];
    for (int i = 0; i < 4; ++i)
      buf[i] = static_cast<unsigned char>(x >> (8 * i));
    crc_ = crc32c_extend(crc_, buf, sizeof(buf));
  }

  void add_u64(uint64_t x) {
    unsigned char buf[8];
    for (int i = 0; i < 8; ++i)
      buf[i] = static_cast<unsigned char>(x >> (8 * i));
    crc_ = crc32c_extend(crc_, buf, sizeof(buf));
  }

  void add_bytes(std::string_view x) {
    add_u64(x.size());
    crc_ = crc32c_extend(crc_, x.data(), x.size());
  }

  uint32_t result() const {
    return crc_;
  }

private:
  uint32_t crc_ = 0;
};

// The canonical forms. Version 1: format_version, actor, version, state,
// the number of sequence numbers, then each (caller, sequence number) in
// ascending byte order of the caller id. Version 2: the same with
// format_version 2, then the number of replies and each (caller, reply) in
// ascending byte order of the caller id. Version 3: the version-2 form with
// format_version 3, then the number of refs and each ref key in stored
// order. `Seqs` / `Replies` are any maps from string to uint64 / bytes;
// entries are sorted here because Protobuf maps are not. `Refs` is any
// sequence of byte strings.
template <class Seqs, class Replies, class Refs>
uint32_t checksum_of(uint32_t format, std::string_view actor, uint64_t version,
                     std::string_view state, const Seqs& seqs,
                     const Replies& replies, const Refs& refs) {
  std::vector<std::pair<std::string_view, uint64_t>> sorted;
  sorted.reserve(seqs.size());
  for (auto& [caller, seq] : seqs)
    sorted.emplace_back(caller, seq);
  std::sort(sorted.begin(), sorted.end());
  crc_builder crc;
  crc.add_u32(format);
  crc.add_bytes(actor);
  crc.add_u64(version);
  crc.add_bytes(state);
  crc.add_u64(sorted.size());
  for (auto& [caller, seq] : sorted) {
    crc.add_bytes(caller);
    crc.add_u64(seq);
  }
  if (format >= 2) {
    std::vector<std::pair<std::string_view, std::string_view>> rs;
    rs.reserve(replies.size());
    for (auto& [caller, reply] : replies)
      rs.emplace_back(caller, reply);
    std::sort(rs.begin(), rs.end());
    crc.add_u64(rs.size());
    for (auto& [caller, reply] : rs) {
      crc.add_bytes(caller);
      crc.add_bytes(reply);
    }
  }
  if (format >= 3) {
    crc.add_u64(static_cast<uint64_t>(refs.size()));
    for (auto& key : refs)
      crc.add_bytes(key);
  }
  return crc.result();
}

// The version `encode` writes for `x`.
uint32_t format_for(const checkpoint& x) {
  return !x.refs.empty() ? 3 : x.replies.empty() ? 1 : 2;
}

// The canonical form of a ref_value_record (version 1): format_version,
// key, value, the number of refs and each ref in stored order.
template <class Refs>
uint32_t value_checksum(uint32_t format, std::string_view key,
                        std::string_view value, const Refs& refs) {
  crc_builder crc;
  crc.add_u32(format);
  crc.add_bytes(key);
  crc.add_bytes(value);
  crc.add_u64(static_cast<uint64_t>(refs.size()));
  for (auto& r : refs)
    crc.add_bytes(r);
  return crc.result();
}

// Whether `x` is well-formed UTF-8 (what proto3 demands of string fields;
// a record with a malformed caller id would not parse back).
[[maybe_unused]] bool valid_utf8(std::string_view x) {
  size_t i = 0;
  while (i < x.size()) {
    auto c = static_cast<unsigned char>(x[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3
                                : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > x.size())
      return false;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      auto d = static_cast<unsigned char>(x[i + k]);
      if ((d & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // No overlong forms, no surrogates, nothing past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
        || (len == 4 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF)
        || cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}

caf::error corrupt(const std::string& actor, const std::string& what) {
  return make_error(persist_errc::checkpoint_corrupt,
                    "checkpoint of actor '" + actor + "': " + what);
}

} // namespace

uint32_t record_codec::checksum(const checkpoint& x) {
  return checksum_of(format_for(x), x.actor, x.version, x.state,
                     x.sequence_numbers, x.replies, x.refs);
}

std::string record_codec::encode(const checkpoint& x) {
  persist::v1::checkpoint_record rec;
  rec.set_format_version(format_for(x));
  rec.set_actor(x.actor);
  rec.set_version(x.version);
  rec.set_state(x.state);
  auto& seqs = *rec.mutable_sequence_numbers();
  for (auto& [caller, seq] : x.sequence_numbers) {
    assert(valid_utf8(caller));
    seqs[caller] = seq;
  }
  auto& replies = *rec.mutable_replies();
  for (auto& [caller, reply] : x.replies) {
    assert(valid_utf8(caller));
    replies[caller] = reply;
  }
  for (auto& key : x.refs)
    rec.add_refs(key);
  rec.set_crc32c(checksum(x));
  return rec.SerializeAsString();
}

caf::expected<checkpoint> record_codec::decode(const std::string& actor,
                                               std::string_view bytes) {
  persist::v1::checkpoint_record rec;
  if (bytes.size() > static_cast<size_t>(INT32_MAX)
      || !rec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return corrupt(actor, "the record does not parse");
  if (rec.format_version() == 0)
    return corrupt(actor, "the record has no format version");
  if (rec.format_version() > format_version)
    return make_error(persist_errc::incompatible_state,
                      "checkpoint of actor '" + actor + "': format version "
                        + std::to_string(rec.format_version())
                        + ", this build reads versions 1 to "
                        + std::to_string(format_version));
  if (rec.format_version() == 1 && !rec.replies().empty())
    return corrupt(actor, "a version-1 record with replies");
  if (rec.format_version() < 3 && rec.refs_size() > 0)
    return corrupt(actor, "a version-" + std::to_string(rec.format_version())
                            + " record with refs");
  auto crc = checksum_of(rec.format_version(), rec.actor(), rec.version(),
                         rec.state(), rec.sequence_numbers(), rec.replies(),
                         rec.refs());
  if (crc != rec.crc32c())
    return corrupt(actor, "CRC-32C mismatch (stored "
                            + std::to_string(rec.crc32c()) + ", computed "
                            + std::to_string(crc) + ")");
  if (rec.actor() != actor)
    return corrupt(actor, "the record belongs to actor '" + rec.actor() + "'");
  checkpoint result;
  result.actor = std::move(*rec.mutable_actor());
  result.version = rec.version();
  result.state = std::move(*rec.mutable_state());
  for (auto& [caller, seq] : rec.sequence_numbers())
    result.sequence_numbers.emplace(caller, seq);
  for (auto& [caller, reply] : rec.replies())
    result.replies.emplace(caller, reply);
  result.refs.assign(rec.refs().begin(), rec.refs().end());
  return result;
}

std::string record_codec::encode_value(const std::string& key,
                                       const kept_value& x) {
  persist::v1::ref_value_record rec;
  rec.set_format_version(value_format_version);
  rec.set_key(key);
  rec.set_value(x.value);
  for (auto& r : x.refs)
    rec.add_refs(r);
  rec.set_crc32c(value_checksum(value_format_version, key, x.value, x.refs));
  return rec.SerializeAsString();
}

caf::expected<kept_value>
record_codec::decode_value(const std::string& key, std::string_view bytes) {
  auto bad = [&key](const std::string& what) {
    return make_error(persist_errc::checkpoint_corrupt,
                      "kept value '" + key + "': " + what);
  };
  persist::v1::ref_value_record rec;
  if (bytes.size() > static_cast<size_t>(INT32_MAX)
      || !rec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return bad("the record does not parse");
  if (rec.format_version() == 0)
    return bad("the record has no format version");
  if (rec.format_version() > value_format_version)
    return make_error(persist_errc::incompatible_state,
                      "kept value '" + key + "': format version "
                        + std::to_string(rec.format_version())
                        + ", this build reads version "
                        + std::to_string(value_format_version));
  auto crc = value_checksum(rec.format_version(), rec.key(), rec.value(),
                            rec.refs());
  if (crc != rec.crc32c())
    return bad("CRC-32C mismatch (stored " + std::to_string(rec.crc32c())
               + ", computed " + std::to_string(crc) + ")");
  if (rec.key() != key)
    return bad("the record belongs to key '" + rec.key() + "'");
  kept_value result;
  result.value = std::move(*rec.mutable_value());
  result.refs.assign(rec.refs().begin(), rec.refs().end());
  return result;
}

void put_checkpoint(write_batch& batch, const checkpoint& x) {
  batch.put(column_family::actor_state, x.actor, record_codec::encode(x));
}

caf::expected<std::optional<checkpoint>>
read_checkpoint(const checkpoint_store& store, const std::string& actor) {
  auto bytes = store.read(column_family::actor_state, actor);
  if (!bytes)
    return std::move(bytes.error());
  if (!bytes->has_value())
    return std::optional<checkpoint>{};
  auto x = record_codec::decode(actor, **bytes);
  if (!x)
    return std::move(x.error());
  return std::optional<checkpoint>{std::move(*x)};
}

} // namespace dref
