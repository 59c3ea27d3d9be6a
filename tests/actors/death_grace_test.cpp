// A ref in flight from a process that has since died (issue 17, defect
// (a)), across real processes: a value must live while any ref to it
// exists anywhere, also one sent by a process that died right after.
//
// Three workers: O (an actor whose `put`s its worker owns) lives through
// the test; each round starts a fresh Q (a plain CAF actor) and a fresh
// forwarder P on the two other workers. Each round:
// 1. X is put by the driver or by O; P gets it (kept in its state, or as
//    the argument of the call that forwards it); the owner's own ref is
//    dropped, so only P protects X (its borrow, or the submitted refs of
//    its call).
// 2. P sends X to Q in a plain CAF message and, as soon as Q has it, kills
//    its own process with SIGKILL. Q's registration with the owner is
//    still on its way (Q has yet to connect to O), and P's protections die
//    with P: they must linger (`config::death_grace`) until it arrives.
// 3. Once the runtime replaced P's worker, Q reads X: it must get the
//    value. Q drops it and its worker is killed too (the next Q is a
//    process new to O again).
// The test ends with the no-leak check (lingering holds expire too).

#include "test_util.hpp"

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <thread>

#include <unistd.h>

#include "caf/all.hpp"
#include "caf/io/middleman.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

/// What P sends Q: the ref and the round it belongs to.
struct handed_ref {
  ref<std::string> x;
  int32_t round = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handed_ref& x) {
  return f(caf::meta::type_name("test.handed_ref"), x.x, x.round);
}

using dg_read_atom = caf::atom_constant<caf::atom("dg_read")>;
using dg_drop_atom = caf::atom_constant<caf::atom("dg_drop")>;

int32_t own_pid() {
  return static_cast<int32_t>(::getpid());
}

// Q: keeps the refs it is handed (answering "got" once it has one), reads
// the one of a round on request.
caf::behavior receiver_fn(caf::event_based_actor* self) {
  auto kept = std::make_shared<std::map<int32_t, ref<std::string>>>();
  return {
    [kept](handed_ref& h) {
      (*kept)[h.round] = std::move(h.x);
      return std::string{"got"};
    },
    [self, kept](dg_read_atom, int32_t round) {
      auto i = kept->find(round);
      if (i == kept->end())
        return std::string{"error: nothing received"};
      auto v = dref::get(i->second, std::chrono::seconds{10});
      return v ? *v : "error: " + self->system().render(v.error());
    },
    [kept](dg_drop_atom) {
      kept->clear();
      return int32_t{0};
    },
  };
}

// Hosts Q in its worker (Q goes with the worker, which the test kills).
class dg_receiver {
public:
  // Starts Q; returns its port on 127.0.0.1.
  int32_t open() {
    auto sys = dref::worker_system();
    if (sys == nullptr)
      throw std::runtime_error("not in a worker");
    // Detached: its handler reads with a blocking dref::get, which a
    // scheduler thread refuses (would_block).
    q_ = sys->spawn<caf::detached>(receiver_fn);
    auto port = sys->middleman().publish(q_, 0, "127.0.0.1");
    if (!port)
      throw std::runtime_error(sys->render(port.error()));
    return *port;
  }
  int32_t pid() const {
    return own_pid();
  }

private:
  caf::actor q_;
};

// O: values it puts are owned by its worker.
class dg_maker {
public:
  ref<std::string> make(std::string value) {
    return dref::put(std::move(value)).value();
  }
  int32_t pid() const {
    return own_pid();
  }
};

// P: forwards a ref to Q and dies at once.
class dg_forwarder {
public:
  std::string connect(int32_t port) {
    auto sys = dref::worker_system();
    if (sys == nullptr)
      return "not in a worker";
    auto q = sys->middleman().remote_actor("127.0.0.1",
                                           static_cast<uint16_t>(port));
    if (!q)
      return sys->render(q.error());
    q_ = std::move(*q);
    return "ok";
  }
  int32_t keep(ref<std::string> x) {
    kept_ = std::move(x);
    return 1;
  }
  // Only return with the reason the ref could not be handed on.
  std::string forward_kept_and_die(int32_t round) {
    return hand_on_and_die(kept_, round);
  }
  std::string forward_arg_and_die(ref<std::string> x, int32_t round) {
    return hand_on_and_die(x, round);
  }
  int32_t pid() const {
    return own_pid();
  }

private:
  // Sends `x` to Q in a plain CAF message; once Q has it (so the message
  // surely left), this process dies with all it holds.
  std::string hand_on_and_die(const ref<std::string>& x, int32_t round) {
    auto sys = dref::worker_system();
    if (sys == nullptr || !q_)
      return "not connected";
    std::string answer;
    caf::scoped_actor self{*sys};
    self->request(q_, std::chrono::seconds{10}, handed_ref{x, round})
      .receive([&](const std::string& s) { answer = s; },
               [&](caf::error& err) { answer = sys->render(err); });
    if (answer != "got")
      return answer;
    ::kill(::getpid(), SIGKILL);
    std::this_thread::sleep_for(std::chrono::seconds{10});
    return "still alive after SIGKILL";
  }

  caf::actor q_;
  ref<std::string> kept_;
};

} // namespace

DREF_MESSAGE_TYPE(handed_ref, "test.handed_ref");
DREF_ACTOR(dg_receiver, &dg_receiver::open, &dg_receiver::pid);
DREF_ACTOR(dg_maker, &dg_maker::make, &dg_maker::pid);
DREF_ACTOR(dg_forwarder, &dg_forwarder::connect, &dg_forwarder::keep,
           &dg_forwarder::forward_kept_and_die,
           &dg_forwarder::forward_arg_and_die, &dg_forwarder::pid);

namespace {

constexpr size_t num_workers = 3;

/// Waits (bounded) until `num_workers` workers run, none of them one of
/// the dead `gone`.
void wait_for_workers(runtime& rt, const std::set<int32_t>& gone) {
  for (int i = 0; i < 2000; ++i) {
    auto ws = rt.workers();
    bool fine = ws.size() == num_workers;
    for (auto& w : ws)
      fine = fine && gone.count(w.pid) == 0;
    if (fine)
      return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("the runtime did not replace the dead workers");
}

/// A fresh instance of `C` on a worker none of `taken` (respawned until it
/// lands there, bounded), and its worker's pid.
template <class C>
std::pair<actor_handle<C>, int32_t>
spawn_apart(runtime& rt, const std::set<int32_t>& taken) {
  for (int i = 0; i < 10; ++i) {
    auto a = rt.spawn<C>();
    auto pid = rt.get(a.call(&C::pid), std::chrono::seconds{30});
    REQUIRE_MESSAGE(pid, test::why(pid));
    if (taken.count(*pid) == 0)
      return {a, *pid};
  }
  FAIL("no actor landed on a worker of its own");
  return {};
}

/// Waits (bounded) until the owner's entry of `id` has no ref of its own
/// and one borrower: P.
void wait_only_borrowed(runtime& rt, const object_id& id) {
  for (int i = 0; i < 1000; ++i) {
    auto report = rt.memory();
    REQUIRE_MESSAGE(report, test::why(report));
    for (auto& p : report->processes)
      for (auto& e : p.objects)
        if (e.id == id && e.state == "ready" && e.local_refs == 0
            && e.submitted_refs == 0 && e.borrowers == 1)
          return;
    std::this_thread::sleep_for(5ms);
  }
  FAIL("the owner still holds its own ref to " << to_string(id));
}

/// Asks Q (a plain CAF actor) for `what`; returns its answer or the error.
template <class T, class... Ts>
caf::expected<T> ask(runtime& rt, const caf::actor& q, Ts... what) {
  caf::scoped_actor self{rt.system()};
  caf::expected<T> result{T{}};
  self->request(q, std::chrono::seconds{30}, what...)
    .receive([&](T& x) { result = std::move(x); },
             [&](caf::error& err) { result = std::move(err); });
  return result;
}

/// How P got X in a round.
enum class handed { kept, argument };

/// Q on a fresh worker: the handle of its host, the worker's pid and Q.
struct receiver {
  actor_handle<dg_receiver> host;
  int32_t pid = 0;
  int32_t port = 0;
  caf::actor q;
};

receiver open_receiver(runtime& rt, int32_t o_pid) {
  receiver r;
  std::tie(r.host, r.pid) = spawn_apart<dg_receiver>(rt, {o_pid});
  auto port = rt.get(r.host.call(&dg_receiver::open));
  REQUIRE_MESSAGE(port, test::why(port));
  r.port = *port;
  // A process that just started may miss the handshake's deadline on a
  // loaded machine (connection_timeout): try again, bounded.
  auto q = rt.system().middleman().remote_actor(
    "127.0.0.1", static_cast<uint16_t>(r.port));
  for (int attempt = 1; !q && attempt < 5; ++attempt)
    q = rt.system().middleman().remote_actor(
      "127.0.0.1", static_cast<uint16_t>(r.port));
  REQUIRE_MESSAGE(q, test::why(q));
  r.q = std::move(*q);
  return r;
}

/// One round (see the top of the file): X made by the driver or by O,
/// handed to P, forwarded to Q by P, which dies; Q then reads it. Q's
/// worker is killed at the end, so that each round's Q is a process that
/// has yet to connect to O (its registration takes longer).
void run_round(runtime& rt, int32_t round, bool worker_owned, handed how,
               actor_handle<dg_maker>& maker, int32_t o_pid) {
  auto value = "value of round " + std::to_string(round);
  std::string scenario = std::string{"owned by "}
                         + (worker_owned ? "a worker" : "the driver")
                         + (how == handed::kept ? ", kept by P"
                                                : ", P's argument");
  INFO("round " << round << ", " << scenario);
  auto q = open_receiver(rt, o_pid);
  auto [p, p_pid] = spawn_apart<dg_forwarder>(rt, {o_pid, q.pid});
  REQUIRE_EQ(rt.get(p.call(&dg_forwarder::connect, q.port)).value(), "ok");
  ref<std::string> x;
  if (worker_owned) {
    auto made = rt.get(maker.call(&dg_maker::make, value));
    REQUIRE_MESSAGE(made, test::why(made));
    x = std::move(*made);
  } else {
    x = rt.put(value);
  }
  auto id = x.id();
  ref<std::string> done;
  if (how == handed::kept) {
    REQUIRE_EQ(rt.get(p.call(&dg_forwarder::keep, x)).value(), 1);
    x = {};
    wait_only_borrowed(rt, id); // only P's borrow is left
    done = p.call(&dg_forwarder::forward_kept_and_die, round);
  } else {
    done = p.call(&dg_forwarder::forward_arg_and_die, x, round);
    x = {}; // only P's call (and P's borrow) hold it now
  }
  auto died = rt.get(done, std::chrono::seconds{30});
  REQUIRE_MESSAGE(!died, "P did not die: " << (died ? *died : ""));
  CHECK(test::is(died.error(), actors_errc::worker_died));
  p = {};
  wait_for_workers(rt, {p_pid});
  // The driver saw P die, and O, which watches its borrower P, well before
  // a replacement started: X must still be there for Q.
  auto read = ask<std::string>(rt, q.q, dg_read_atom::value, round);
  CHECK_EQ(test::why(read), "a value");
  if (read)
    CHECK_EQ(*read, value);
  auto dropped = ask<int32_t>(rt, q.q, dg_drop_atom::value);
  CHECK_EQ(test::why(dropped), "a value");
  REQUIRE_EQ(::kill(q.pid, SIGKILL), 0);
  q.host = {};
  wait_for_workers(rt, {p_pid, q.pid});
}

} // namespace

TEST_CASE("a ref sent in a plain CAF message by a process that dies at once "
          "still reaches its value") {
  test::with_cluster(test::small_cluster(num_workers), [](runtime& rt) {
    // O lives through every round; each round's Q and P are fresh
    // processes on the two other workers.
    auto maker = rt.spawn<dg_maker>();
    auto o_pid = rt.get(maker.call(&dg_maker::pid)).value();
    // Every other round a worker owns X and P keeps it: the case with the
    // widest window (Q connects to O first; in the others Q's process has
    // long been connected to the driver, or the driver's own borrow of X
    // goes only with its next batch of releases). The odd rounds take the
    // other three cases in turn.
    const int32_t rounds = 80;
    for (int32_t round = 0; round < rounds; ++round) {
      auto other = round / 2 % 3; // 0, 1, 2: the other cases
      bool worker_owned = round % 2 == 0 || other == 1;
      auto how = round % 2 == 0 || other == 0 ? handed::kept
                                              : handed::argument;
      run_round(rt, round, worker_owned, how, maker, o_pid);
    }
  });
}
