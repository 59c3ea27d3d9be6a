// Unit tests of ref_base / ref<T>: each live ref holds exactly one local
// ref on its object, counted through a fake ref_context.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "dref/refs/object_id.hpp"
#include "dref/refs/ref.hpp"

using namespace dref;

namespace {

// Counts add/remove calls per object id.
class counting_context : public ref_context {
public:
  void add_local_ref(const object_id& id) noexcept override {
    ++adds[id];
  }

  void remove_local_ref(const object_id& id) noexcept override {
    ++removes[id];
  }

  int added(const object_id& id) const {
    auto i = adds.find(id);
    return i != adds.end() ? i->second : 0;
  }

  int removed(const object_id& id) const {
    auto i = removes.find(id);
    return i != removes.end() ? i->second : 0;
  }

  int total_adds() const {
    int n = 0;
    for (auto& [id, k] : adds)
      n += k;
    return n;
  }

  int total_removes() const {
    int n = 0;
    for (auto& [id, k] : removes)
      n += k;
    return n;
  }

  std::map<object_id, int> adds;
  std::map<object_id, int> removes;
};

const object_id id1{9, 1};
const object_id id2{9, 2};

} // namespace

TEST_CASE("a default ref names nothing and counts nothing") {
  ref<int> r;
  CHECK_FALSE(r.valid());
  CHECK_FALSE(static_cast<bool>(r));
  CHECK_FALSE(r.id().valid());
  CHECK(r.context() == nullptr);
  r.reset(); // harmless
  CHECK_FALSE(r.valid());
}

TEST_CASE("a ref made from an id adopts the owner's count without adding") {
  auto ctx = std::make_shared<counting_context>();
  {
    ref<int> r{id1, ctx};
    CHECK(r.valid());
    CHECK(r.id() == id1);
    CHECK(r.context() == ctx.get());
    CHECK(ctx->total_adds() == 0);
    CHECK(ctx->total_removes() == 0);
  }
  // Destruction gives the adopted ref back.
  CHECK(ctx->total_adds() == 0);
  CHECK(ctx->removed(id1) == 1);
  CHECK(ctx->total_removes() == 1);
}

TEST_CASE("copying a ref adds one local ref and destroying the copy removes "
          "it") {
  auto ctx = std::make_shared<counting_context>();
  ref<int> r{id1, ctx};
  {
    ref<int> copy{r};
    CHECK(copy.valid());
    CHECK(copy.id() == id1);
    CHECK(ctx->added(id1) == 1);
    CHECK(ctx->removed(id1) == 0);
  }
  CHECK(ctx->added(id1) == 1);
  CHECK(ctx->removed(id1) == 1);
  CHECK(r.valid());
  CHECK(r.id() == id1);
}

TEST_CASE("moving a ref transfers its local ref without counting") {
  auto ctx = std::make_shared<counting_context>();
  ref<int> r{id1, ctx};
  ref<int> moved{std::move(r)};
  CHECK(moved.valid());
  CHECK(moved.id() == id1);
  CHECK_FALSE(r.valid()); // NOLINT(bugprone-use-after-move)
  CHECK_FALSE(r.id().valid());
  CHECK(ctx->total_adds() == 0);
  CHECK(ctx->total_removes() == 0);
  moved.reset();
  CHECK(ctx->removed(id1) == 1);
}

TEST_CASE("reset removes the local ref once and leaves the ref invalid") {
  auto ctx = std::make_shared<counting_context>();
  {
    ref<int> r{id1, ctx};
    r.reset();
    CHECK_FALSE(r.valid());
    CHECK_FALSE(r.id().valid());
    CHECK(r.context() == nullptr);
    CHECK(ctx->removed(id1) == 1);
    r.reset();
    CHECK(ctx->removed(id1) == 1);
  }
  // Destroying the reset ref does not remove again.
  CHECK(ctx->removed(id1) == 1);
  CHECK(ctx->total_adds() == 0);
}

TEST_CASE("copy-assigning a ref adds to the new object and removes from the "
          "old one") {
  auto ctx = std::make_shared<counting_context>();
  ref<int> a{id1, ctx};
  ref<int> b{id2, ctx};
  b = a;
  CHECK(b.id() == id1);
  CHECK(a.id() == id1);
  CHECK(ctx->added(id1) == 1);
  CHECK(ctx->removed(id2) == 1);
  CHECK(ctx->removed(id1) == 0);
  CHECK(ctx->added(id2) == 0);
}

TEST_CASE("move-assigning a ref removes the target's old ref and transfers "
          "the source's") {
  auto ctx = std::make_shared<counting_context>();
  ref<int> a{id1, ctx};
  ref<int> b{id2, ctx};
  b = std::move(a);
  CHECK(b.valid());
  CHECK(b.id() == id1);
  CHECK_FALSE(a.valid()); // NOLINT(bugprone-use-after-move)
  CHECK_FALSE(a.id().valid());
  CHECK(ctx->removed(id2) == 1);
  CHECK(ctx->removed(id1) == 0);
  CHECK(ctx->total_adds() == 0);
}

TEST_CASE("assigning a ref to itself changes no count and keeps it valid") {
  auto ctx = std::make_shared<counting_context>();
  ref<int> r{id1, ctx};
  auto& alias = r;
  r = alias;
  CHECK(r.valid());
  CHECK(r.id() == id1);
  r = std::move(alias);
  CHECK(r.valid());
  CHECK(r.id() == id1);
  CHECK(ctx->total_adds() == 0);
  CHECK(ctx->total_removes() == 0);
}

TEST_CASE("copy-assigning from a default ref releases the target") {
  auto ctx = std::make_shared<counting_context>();
  ref<int> r{id1, ctx};
  ref<int> empty;
  r = empty;
  CHECK_FALSE(r.valid());
  CHECK(ctx->removed(id1) == 1);
  CHECK(ctx->total_adds() == 0);
}

TEST_CASE("a typed ref adopts the local ref of an untyped one") {
  auto ctx = std::make_shared<counting_context>();
  ref_base base{id1, ctx};
  ref<std::string> typed{std::move(base)};
  CHECK(typed.valid());
  CHECK(typed.id() == id1);
  CHECK_FALSE(base.valid()); // NOLINT(bugprone-use-after-move)
  CHECK(ctx->total_adds() == 0);
  CHECK(ctx->total_removes() == 0);
}

TEST_CASE("every copy is balanced by a removal once all refs are gone") {
  auto ctx = std::make_shared<counting_context>();
  {
    ref<int> r{id1, ctx};
    ref<int> a{r};
    ref<int> b;
    b = a;
    ref<int> c{std::move(b)};
    a.swap(c);
  }
  // One adopted ref plus two copies: three removals.
  CHECK(ctx->added(id1) == 2);
  CHECK(ctx->removed(id1) == 3);
}

TEST_CASE("a ref keeps its context alive after the caller drops it") {
  auto ctx = std::make_shared<counting_context>();
  std::weak_ptr<counting_context> weak = ctx;
  ref<int> r{id1, ctx};
  auto raw = ctx.get();
  ctx.reset();
  CHECK_FALSE(weak.expired());
  r.reset();
  CHECK(weak.expired());
  static_cast<void>(raw);
}

// -- refs inside values ---------------------------------------------------------

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"

namespace {

// A context that owns objects of owner 9 at port 5000 and counts adoptions.
class owning_context : public counting_context {
public:
  void describe(const object_id& id, ref_descriptor& out) const override {
    out.id = id;
    out.owner = process_address{9, "127.0.0.1", 5000};
  }
  void adopt(const ref_descriptor& d) noexcept override {
    adopted.push_back(d);
    add_local_ref(d.id);
  }
  std::vector<ref_descriptor> adopted;
};

struct holder {
  std::string name;
  std::vector<ref<int>> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, holder& x) {
  return f(x.name, x.items);
}

} // namespace

TEST_CASE("refs inside a value are collected when written and adopted when read") {
  auto writer = std::make_shared<owning_context>();
  auto reader = std::make_shared<owning_context>();
  std::vector<char> bytes;
  {
    holder h;
    h.name = "two refs";
    h.items.emplace_back(id1, writer);
    h.items.emplace_back(id2, writer);
    std::vector<ref_base> seen;
    {
      ref_collect_scope scope{seen};
      caf::binary_serializer sink{nullptr, bytes};
      REQUIRE_FALSE(sink(h));
    }
    REQUIRE_EQ(seen.size(), 2u);
    CHECK_EQ(seen[0].id(), id1);
    CHECK_EQ(seen[1].id(), id2);
    CHECK_EQ(writer->added(id1), 1); // the collected copy
  }
  // Every ref the writer made or copied is gone again.
  CHECK_EQ(writer->total_adds() + 2, writer->total_removes());
  holder back;
  {
    ref_read_scope scope{reader};
    caf::binary_deserializer source{nullptr, bytes};
    REQUIRE_FALSE(source(back));
  }
  CHECK_EQ(back.name, "two refs");
  REQUIRE_EQ(back.items.size(), 2u);
  CHECK_EQ(back.items[1].id(), id2);
  CHECK_EQ(back.items[1].context(), reader.get());
  REQUIRE_EQ(reader->adopted.size(), 2u);
  CHECK_EQ(reader->adopted[0].owner.port, 5000);
  back.items.clear();
  CHECK_EQ(reader->removed(id1), 1);
}

TEST_CASE("reading a ref outside any dref context fails clearly") {
  auto writer = std::make_shared<owning_context>();
  std::vector<char> bytes;
  {
    ref<int> r{id1, writer};
    caf::binary_serializer sink{nullptr, bytes};
    REQUIRE_FALSE(sink(r));
  }
  ref<int> back;
  caf::binary_deserializer source{nullptr, bytes};
  auto err = source(back);
  CHECK(err);
  CHECK_FALSE(back.valid());
}
