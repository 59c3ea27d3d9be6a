#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dref/refs/object_id.hpp"

namespace dref {

/// Which values the durable actors' checkpoints keep on disk (in the
/// `ref_values` column family), so that a ref held in a durable state can
/// be read after its owner died or the cluster restarted; and what writing
/// a new checkpoint must add and erase. Protocol: "Refs in durable state"
/// in docs/architecture.md.
///
/// An actor has at most two checkpoints on disk, one per slot (odd and even
/// versions, see `checkpointer::slot`); each lists the ids of the values its
/// state refers to. Invariant (of the committed view): the kept values of
/// an actor are exactly the union of what its two checkpoints list. A value
/// is kept per actor (key: id and actor name), so two actors holding the
/// same ref each keep a copy and neither's writes touch the other's.
///
/// Changes are staged: `stage` plans one checkpoint of a write batch (a
/// batch may hold several checkpoints of one actor) and updates the staged
/// view; `commit` makes the staged view current after the batch was
/// written, `abort` drops it after a failed write.
///
/// Part of persist/ because it decides what durable storage holds (the
/// keys of `ref_values`, docs/checkpoint_format.md); it uses nothing of
/// actors/.
///
/// A plain synchronous class: not thread-safe (the durable-actor layer's
/// checkpointer guards it with its mutex); owned by that checkpointer.
class kept_values {
public:
  /// What one checkpoint write must do besides writing its record.
  struct plan {
    /// Values the new checkpoint lists that no checkpoint of the actor
    /// kept: write them.
    std::vector<object_id> put;
    /// Values only the checkpoint being replaced listed: erase them.
    std::vector<object_id> erase;
  };

  /// Records what checkpoint `version` of `actor`, read from disk, lists.
  /// Replaces what was known of that slot (committed view).
  void loaded(const std::string& actor, uint64_t version,
              std::vector<object_id> ids);

  /// Forgets what is known of `actor`'s checkpoints (committed view), e.g.
  /// before reading them again from disk.
  void forget(const std::string& actor);

  /// What writing checkpoint `version` of `actor` listing `ids` would put
  /// and erase, planned against the staged view; changes nothing.
  plan preview(const std::string& actor, uint64_t version,
               std::vector<object_id> ids) const;

  /// Plans the write of checkpoint `version` of `actor` listing `ids`,
  /// replacing the checkpoint in the same slot, and stages it.
  plan stage(const std::string& actor, uint64_t version,
             std::vector<object_id> ids);

  /// The staged checkpoints were written: they become current.
  void commit();

  /// The write failed: the staged checkpoints are dropped.
  void abort();

  /// True if a committed checkpoint of `actor` lists `id`.
  bool kept(const std::string& actor, const object_id& id) const;

  /// True if a committed checkpoint of any actor lists `id`.
  bool kept_anywhere(const object_id& id) const {
    return counts_.count(id) > 0;
  }

  /// Number of (actor, value) pairs kept (committed view).
  size_t size() const;

  /// The key of the kept value `id` of `actor` in `ref_values`:
  /// `<id>/<actor>` (id as `to_string` renders it).
  static std::string key(const object_id& id, const std::string& actor);

  /// The prefix every key of the kept copies of `id` starts with.
  static std::string prefix(const object_id& id);

private:
  struct slot_entry {
    uint64_t version = 0;
    std::vector<object_id> ids; // sorted, unique
  };
  using slots = std::array<std::optional<slot_entry>, 2>;

  static bool lists(const slots& s, const object_id& id);
  // The ids either slot lists, sorted and unique.
  static std::vector<object_id> all_of(const slots& s);
  // Replaces the committed slots of `actor`, keeping `counts_` exact.
  void set_committed(const std::string& actor, slots s);
  // The staged slots of `actor`, else its committed ones, else none.
  const slots* current(const std::string& actor) const;

  std::map<std::string, slots> committed_;
  // Per id: how many actors' committed checkpoints list it.
  std::map<object_id, size_t> counts_;
  std::map<std::string, slots> staged_; // copies of touched actors
};

} // namespace dref
