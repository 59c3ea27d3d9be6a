// Finding durable actors again: `rt.actor<C>("name")` after a full restart
// and within one runtime, one instance per name, the class recorded with
// the state, and what happens when the stored state is damaged
// (`checkpoint_corrupt` naming the actor, the previous checkpoint used
// when there is one) or does not fit the class (`incompatible_state`).

#include "durable_util.hpp"

#include <string>
#include <vector>

#include "dref/persist/error.hpp"
#include "dref/persist/record_codec.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

class purse {
public:
  purse() = default;

  explicit purse(int64_t coins) : coins_(coins) {
    // nop
  }

  int64_t put(int64_t x) {
    coins_ += x;
    return coins_;
  }

  int64_t coins() const {
    return coins_;
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, purse& x) {
    return f(caf::meta::type_name("test.purse"), x.coins_);
  }

private:
  int64_t coins_ = 0;
};

class crate {
public:
  std::string label() const {
    return label_;
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, crate& x) {
    return f(caf::meta::type_name("test.crate"), x.label_);
  }

private:
  std::string label_ = "empty";
};

using test::durable_cluster;
using test::state_dir;

// Runs `f` on the checkpoint store in `dir` (no runtime may be running).
template <class F>
void with_store(const state_dir& dir, F f) {
  auto store = rocksdb_checkpoint_store::open(dir.path);
  REQUIRE_MESSAGE(store, test::why(store));
  f(**store);
}

// Flips a byte in the middle of the state of the newest checkpoint of
// `name`, writing the damaged record back under its key (damage that the
// storage engine cannot see: only the record's own CRC finds it).
void damage_newest(const state_dir& dir, const std::string& name) {
  with_store(dir, [&](checkpoint_store& store) {
    auto cp = test::newest_checkpoint(store, name);
    REQUIRE(cp);
    auto cf = cp->version % 2 == 1 ? column_family::actor_state
                                   : column_family::actor_state_alt;
    auto bytes = store.read(cf, name);
    REQUIRE(bytes);
    REQUIRE(*bytes);
    auto record = **bytes;
    auto pos = record.find(cp->state);
    REQUIRE(pos != std::string::npos);
    record[pos + cp->state.size() / 2] ^= 0x10;
    write_batch b;
    b.put(cf, name, record);
    REQUIRE_FALSE(store.write(b));
  });
}

} // namespace

DREF_ACTOR(purse, &purse::put, &purse::coins);
DREF_ACTOR(crate, &crate::label);

TEST_CASE("rt.actor finds a durable actor by name after a full restart") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto p = rt.spawn<purse>(durable("purse-1"), int64_t{0});
    REQUIRE(rt.get(p.call(&purse::put, int64_t{5}), 10s));
    REQUIRE(rt.get(p.call(&purse::put, int64_t{7}), 10s));
  });
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto p = rt.actor<purse>("purse-1");
    REQUIRE_MESSAGE(p, test::why(p));
    REQUIRE(rt.get(p->created(), 10s));
    auto c = rt.get(p->call(&purse::coins), 10s);
    REQUIRE(c);
    CHECK(*c == 12);
  });
}

TEST_CASE("rt.actor says unknown_actor for a name never stored and "
          "type_mismatch for a name stored with another class") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    REQUIRE(rt.get(rt.spawn<purse>(durable("purse-2")).created(), 10s));
  });
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto none = rt.actor<purse>("no-such-purse");
    REQUIRE_FALSE(none);
    CHECK(test::is(none.error(), actors_errc::unknown_actor));
    CHECK(test::context_of(none.error()).find("no-such-purse")
          != std::string::npos);
    auto wrong = rt.actor<crate>("purse-2");
    REQUIRE_FALSE(wrong);
    CHECK(test::is(wrong.error(), refs_errc::type_mismatch));
    CHECK(test::context_of(wrong.error()).find("purse-2") != std::string::npos);
    // A spawn of the name with the wrong class fails the same way.
    auto c = rt.spawn<crate>(durable("purse-2"));
    auto created = rt.get(c.created(), 10s);
    REQUIRE_FALSE(created);
    CHECK(test::is(created.error(), refs_errc::type_mismatch));
  });
}

TEST_CASE("a durable name has one instance per runtime: rt.actor and spawn "
          "return the live one") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto a = rt.spawn<purse>(durable("purse-3"));
    REQUIRE(rt.get(a.call(&purse::put, int64_t{1}), 10s));
    auto b = rt.actor<purse>("purse-3");
    REQUIRE(b);
    CHECK(b->id() == a.id());
    auto c = rt.spawn<purse>(durable("purse-3"), int64_t{99});
    CHECK(c.id() == a.id());
    auto wrong = rt.actor<crate>("purse-3");
    REQUIRE_FALSE(wrong);
    CHECK(test::is(wrong.error(), refs_errc::type_mismatch));
    REQUIRE(rt.get(c.call(&purse::put, int64_t{1}), 10s));
    auto coins = rt.get(a.call(&purse::coins), 10s);
    REQUIRE(coins);
    CHECK(*coins == 2);
  });
}

TEST_CASE("a spawn right after the last handle is dropped sees every call "
          "of the previous instance") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    std::vector<ref<int64_t>> acks;
    {
      auto a = rt.spawn<purse>(durable("purse-4"));
      for (int i = 0; i < 300; ++i)
        acks.push_back(a.call(&purse::put, int64_t{1}));
    } // the handle is gone; its calls are still running
    auto b = rt.spawn<purse>(durable("purse-4"));
    auto coins = rt.get(b.call(&purse::coins), 20s);
    REQUIRE_MESSAGE(coins, test::why(coins));
    CHECK(*coins == 300);
    for (auto& x : acks)
      CHECK(rt.get(x, 10s));
  });
}

TEST_CASE("a corrupt newest checkpoint is reported and the previous one is "
          "used") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto p = rt.spawn<purse>(durable("purse-5"));
    REQUIRE(rt.get(p.call(&purse::put, int64_t{1}), 10s));
    REQUIRE(rt.get(p.call(&purse::put, int64_t{2}), 10s));
  });
  int64_t newest = 0;
  with_store(dir, [&](checkpoint_store& store) {
    auto cp = test::newest_checkpoint(store, "purse-5");
    REQUIRE(cp);
    newest = static_cast<int64_t>(cp->version);
  });
  CHECK(newest == 3); // create, put 1, put 2
  damage_newest(dir, "purse-5");
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto p = rt.actor<purse>("purse-5");
    REQUIRE_MESSAGE(p, test::why(p));
    auto c = rt.get(p->call(&purse::coins), 10s);
    REQUIRE_MESSAGE(c, test::why(c));
    CHECK(*c == 1); // the state before the last put
    // It goes on from there, and its next checkpoint replaces the bad one.
    REQUIRE(rt.get(p->call(&purse::put, int64_t{10}), 10s));
  });
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto p = rt.actor<purse>("purse-5");
    REQUIRE(p);
    auto c = rt.get(p->call(&purse::coins), 10s);
    REQUIRE(c);
    CHECK(*c == 11);
  });
}

TEST_CASE("a corrupt checkpoint with no previous one gives checkpoint_corrupt "
          "naming the actor") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    REQUIRE(rt.get(rt.spawn<purse>(durable("purse-6")).created(), 10s));
  });
  damage_newest(dir, "purse-6");
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto p = rt.actor<purse>("purse-6");
    REQUIRE_FALSE(p);
    CHECK(test::is(p.error(), persist_errc::checkpoint_corrupt));
    CHECK(test::context_of(p.error()).find("purse-6") != std::string::npos);
    auto s = rt.spawn<purse>(durable("purse-6"));
    auto created = rt.get(s.created(), 10s);
    REQUIRE_FALSE(created);
    CHECK(test::is(created.error(), persist_errc::checkpoint_corrupt));
  });
}

TEST_CASE("a stored state that does not load into the class gives "
          "incompatible_state naming the actor at spawn") {
  // The record is sound (its CRC matches) and names the right class, but
  // its state is not a purse: what a changed class with the same name
  // would find.
  state_dir dir;
  with_store(dir, [](checkpoint_store& store) {
    checkpoint cp;
    cp.actor = "purse-7";
    cp.version = 1;
    cp.state = "not a purse at all";
    write_batch b;
    b.put(column_family::actor_state, cp.actor, record_codec::encode(cp));
    b.put(column_family::actor_meta, cp.actor,
          "dref-meta 1\nclass purse\n");
    REQUIRE_FALSE(store.write(b));
  });
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto p = rt.actor<purse>("purse-7");
    REQUIRE(p);
    auto created = rt.get(p->created(), 10s);
    REQUIRE_FALSE(created);
    CHECK(test::is(created.error(), persist_errc::incompatible_state));
    CHECK(test::context_of(created.error()).find("purse-7")
          != std::string::npos);
    auto call = rt.get(p->call(&purse::coins), 10s);
    CHECK_FALSE(call);
  });
}
