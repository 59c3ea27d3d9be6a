#pragma once

#include <cstdint>

namespace dref {

enum class column_family : uint8_t;
enum class persist_errc : uint8_t;
struct write_op;
struct write_batch;
class checkpoint_store;
class memory_checkpoint_store;
struct rocksdb_store_options;
class rocksdb_checkpoint_store;
struct checkpoint;
class record_codec;
struct group_commit_options;
class group_committer;
class fault_injecting_store;
class kept_values;
struct kept_ref_value;
struct sequence_table;

} // namespace dref
