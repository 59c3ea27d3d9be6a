#pragma once

#include <cstdint>

namespace dref {

class local_store;
class buffer;
template <class T>
class array_view;
class store_index;
class node_store;
class segment_writer;
class transfer_server;
class transfer_client;
struct store_config;
struct store_stats;
struct store_endpoint;
enum class store_errc : uint8_t;

/// Which copy of an object a store holds. A *primary* copy is the one the
/// object was put into (it must not be lost while the object lives: under
/// memory pressure it is spilled to disk, never dropped). A *secondary*
/// copy was pulled from another node and can be pulled again: it is evicted
/// first, without writing anything.
enum class copy_kind : uint8_t {
  primary = 0,
  secondary = 1,
};

} // namespace dref
