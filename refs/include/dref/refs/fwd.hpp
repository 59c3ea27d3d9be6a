#pragma once

#include <cstdint>
#include <vector>

namespace dref {

struct object_id;
struct lineage;
struct object_entry;
class ownership_table;
class ref_context;
class ref_base;
template <class T>
class ref;
enum class refs_errc : uint8_t;

/// Serialized bytes of one value. `std::vector<char>` because CAF 0.17
/// serializes it as one block (a `vector<caf::byte>` is ~40x slower).
using blob = std::vector<char>;

/// Identifies one worker process inside a cluster (0 = the driver itself).
using worker_id = uint32_t;

/// The driver's own id in location lists: the value is in the owner's memory.
constexpr worker_id owner_location = 0;

/// A reserved id in location lists: a copy sealed in the node store, which
/// every worker on the node reads without copying and which outlives the
/// worker that made it (the driver hosts the store).
constexpr worker_id node_location = 0xFFFFFFFF;

} // namespace dref
