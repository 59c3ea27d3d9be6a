#pragma once

// Simulated processes for deterministic tests of the reference protocol
// (issue 17, "deterministic protocol tests"). Each simulated process runs
// its own `ref_core`, exactly as a real process does; the messages the cores
// ask to send travel through a simulated network whose delivery order the
// test chooses, one message at a time. A process can be killed at any step;
// time is virtual and moves only when the test says so.
//
// The model (what the real transport guarantees, see docs/architecture.md):
// - Messages may be delivered in any order, also between the same two
//   processes, and a message may be delivered twice (`duplicate`).
// - A process that dies may lose every message it had not delivered yet
//   (`kill(p, lose_outgoing)`); the others learn of its death by a `down`
//   notice that arrives after the messages it did deliver to them.
// - Time passes only when no message is in flight: delivery takes less
//   than any hold's deadline (`death_grace`, `transit_timeout`).
//
// Who may touch it: one test thread.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dref/refs/ref_core.hpp"

namespace dref::sim {

/// A message between two simulated processes.
struct message {
  enum class kind {
    borrow,       ///< registration (borrowing, step 2)
    answer,       ///< the owner's answer to a registration
    release,      ///< borrowing, step 4
    hold_release, ///< a receiver lets go of a transit hold
    free_copy,    ///< the owner frees copies kept at the receiver
    carry,        ///< a plain message carrying refs (transit holds)
    task,         ///< a task whose arguments hold refs
    done,         ///< the task's result reached its submitter
    result,       ///< a result value with refs inside, kept at the sender
    down,         ///< the sender died
  };
  explicit message(kind k) : what(k) {
  }

  kind what;
  /// Unique per message (a duplicate keeps it).
  uint64_t serial = 0;
  size_t from = 0;
  size_t to = 0;
  uint64_t token = 0;
  std::vector<object_id> ids;
  std::vector<uint64_t> gens;
  std::vector<uint64_t> tokens;
  std::vector<ref_descriptor> refs;
  process_address sender;

  std::string describe() const;
};

/// A task the simulation runs: it holds the refs of its arguments from
/// arrival, may finish once their registrations are answered, then reports
/// `done` to its submitter.
struct sim_task {
  size_t at = 0;
  size_t submitter = 0;
  object_id arg;
  uint64_t token = 0; // registration the worker waits for before it runs
  bool keep = false;  // the task keeps its argument (as a user ref)
};

/// N processes, their cores, the network and the virtual clock.
class cluster {
public:
  struct options {
    ref_core::duration death_grace = std::chrono::seconds{2};
    ref_core::duration transit_timeout = std::chrono::seconds{60};
  };

  explicit cluster(size_t n) : cluster(n, options{}) {
  }

  cluster(size_t n, options opts);

  size_t size() const noexcept {
    return procs_.size();
  }

  ref_core& core(size_t p) {
    return *procs_[p].core;
  }

  bool alive(size_t p) const {
    return procs_[p].alive;
  }

  // -- what simulated user code does ------------------------------------------

  /// Process `p` makes a ready object it owns; its user holds one ref.
  object_id put(size_t p);

  /// `p`'s user copies a ref it holds / drops one.
  void copy(size_t p, const object_id& id);
  void drop(size_t p, const object_id& id);

  /// `p`'s user holds a ref to `id` (at least one).
  bool holds(size_t p, const object_id& id) const;

  /// `from` sends a ref it holds to `to` in a plain message.
  void send_ref(size_t from, size_t to, const object_id& id);

  /// `from` (holding a ref to `arg`) submits a task to `to` taking it; with
  /// `keep` the task keeps the ref when it finishes (as a user ref at `to`).
  void submit(size_t from, size_t to, const object_id& arg, bool keep);

  /// Worker `w` reports a result owned by `owner` whose value (kept at `w`)
  /// holds a ref `w`'s user holds; `owner` gets the result (pending until
  /// the message arrives) and its user one ref to it. Returns its id.
  object_id produce(size_t w, size_t owner, const object_id& inner);

  /// `p`'s user reads the value of owned object `outer`: it gets a ref to
  /// every ref inside.
  void read_contained(size_t p, const object_id& outer);

  /// Process `p` dies; with `lose_outgoing` its messages in flight are lost.
  void kill(size_t p, bool lose_outgoing);

  // -- the network and the clock ----------------------------------------------

  /// Messages in flight, in the order they were sent.
  const std::vector<message>& in_flight() const noexcept {
    return net_;
  }

  /// True if message `i` may be delivered now (a `down` only after the
  /// dead process's other messages to the same receiver).
  bool deliverable(size_t i) const;

  /// Delivers message `i`.
  void deliver(size_t i);

  /// Delivers a copy of message `i`, which stays in flight.
  void duplicate(size_t i);

  /// Tasks that may finish now (their registrations are answered).
  std::vector<size_t> finishable() const;

  /// Task `i` of `tasks()` finishes: it reports `done`.
  void finish(size_t i);

  const std::vector<sim_task>& tasks() const noexcept {
    return tasks_;
  }

  /// True if a hold's deadline lies ahead and nothing is in flight.
  bool can_advance() const;

  /// Moves the clock to the next deadline and expires holds.
  void advance();

  // -- checks -----------------------------------------------------------------

  /// Why a live ref is not readable, or empty: every ref a live process
  /// holds names an object its owner still has, unless the owner died.
  std::string unreadable() const;

  /// Why the live processes do not hold nothing, or empty.
  std::string leftovers() const;

  /// Every event so far, one per line (for failure messages).
  const std::string& trace() const noexcept {
    return trace_;
  }

  /// Adds a line to the trace.
  void log(const std::string& line);

private:
  struct proc {
    std::unique_ptr<ref_core> core;
    bool alive = true;
    std::map<object_id, size_t> user; // refs the user holds
    uint64_t next_seq = 1;
  };

  void send(size_t from, message m);
  // Moves what `p`'s core asks to send into the network.
  void flush(size_t p);
  void flush_all();
  void on_message(size_t p, const message& m);
  void user_add(size_t p, const object_id& id);
  size_t index_of(uint64_t process) const;

  options opts_;
  std::vector<proc> procs_;
  std::vector<message> net_;
  uint64_t next_serial_ = 1;
  std::vector<sim_task> tasks_;
  // Tasks submitted and not reported done to their submitter.
  struct outstanding {
    size_t from;
    size_t to;
    object_id arg;
  };
  std::vector<outstanding> outstanding_;
  // Results a worker made (`produce`): id -> its worker.
  std::map<object_id, size_t> made_at_;
  ref_core::time_point now_;
  std::string trace_;
};

/// One step of a scenario: an action the simulated user code takes when
/// `ready` says it can (default: at once), in script order.
struct step {
  std::string name;
  std::function<void(cluster&)> run;
  std::function<bool(const cluster&)> ready = nullptr;
};

/// Explores the orders of a scenario: at every point the next script step,
/// any deliverable message (or, when allowed, a duplicate of one), any
/// finishable task, or moving the clock may come next. After each event
/// every live ref must be readable; when nothing is left to do, every live
/// process must hold nothing.
class explorer {
public:
  struct options {
    /// Deliver duplicates of protocol messages (registrations, answers,
    /// releases, hold releases, frees), each at most once more.
    bool duplicates = false;
    /// Stop after this many complete orders.
    size_t max_orders = 200000;
  };

  using scenario = std::function<std::vector<step>(cluster&)>;

  struct outcome {
    /// Complete orders run.
    size_t orders = 0;
    /// True if every order was explored (not cut off by `max_orders`).
    bool exhaustive = false;
    /// The first failure, with the order that led to it; empty if none.
    std::string failure;
  };

  /// Every order (depth-first, by replaying the scenario), up to
  /// `max_orders`; stops at the first failure.
  static outcome all(size_t procs, const scenario& f, options opts);

  /// `rounds` orders drawn at random from `seed` (each a new random walk);
  /// stops at the first failure.
  static outcome random(size_t procs, const scenario& f, uint64_t seed,
                        size_t rounds, options opts);

  /// The seed for randomized runs: $DREF_SEED (`--seed=N`) or `fallback`.
  static uint64_t seed(uint64_t fallback);
};

} // namespace dref::sim
