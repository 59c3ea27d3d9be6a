#pragma once

#include <string>

#include "caf/error.hpp"

namespace dref::internal {

/// Checks the end of a RocksDB log file (a WAL `NNNNNN.log` or a
/// `MANIFEST-NNNNNN`, both in LevelDB's log format) for the one kind of
/// damage RocksDB's recovery cannot tell from a crash: a last record whose
/// length field was changed to reach past the end of the file. RocksDB
/// treats such a record as torn by a crash and silently drops it, although
/// a synced (acknowledged) write may be in it. A truly torn record is a
/// prefix of what was written, so no shorter length matches its CRC; a
/// complete record with one damaged byte in its length field matches at
/// its true length. (Damage to both the length and the payload of one
/// record is not found here; see docs/checkpoint_format.md.)
///
/// Returns `checkpoint_corrupt` naming `file` when the last record is
/// complete but its length field is wrong; `io_error` when the file cannot
/// be read; no error otherwise (including records this check does not
/// understand, which it leaves to RocksDB). Pure function of the file.
caf::error check_log_tail(const std::string& file);

} // namespace dref::internal
