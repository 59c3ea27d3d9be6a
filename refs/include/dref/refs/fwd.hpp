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

} // namespace dref
