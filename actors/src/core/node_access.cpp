#include "core/node_access.hpp"

#include <cstring>

namespace dref::internal {

node_access::~node_access() {
  // nop
}

namespace {

// The store this process hosts.
class hosted_node final : public node_access {
public:
  explicit hosted_node(std::shared_ptr<node_store> store)
    : store_(std::move(store)) {
    // nop
  }

  caf::expected<buffer> get(const object_id& id) override {
    return store_->get(id);
  }

  caf::error put(const object_id& id, const char* data,
                 size_t size) override {
    auto b = store_->put(id, data, size);
    return b ? caf::error{} : std::move(b.error());
  }

  void free(const object_id& id) override {
    store_->free(id); // not_found: freed already
  }

  std::shared_ptr<node_store> hosted() const override {
    return store_;
  }

private:
  std::shared_ptr<node_store> store_;
};

// The store of this node, through its transfer server.
class connected_node final : public node_access {
public:
  explicit connected_node(node_client client) : client_(std::move(client)) {
    // nop
  }

  caf::expected<buffer> get(const object_id& id) override {
    return client_.get(id);
  }

  caf::error put(const object_id& id, const char* data,
                 size_t size) override {
    auto w = client_.create(id, size);
    if (!w)
      return std::move(w.error());
    std::memcpy(w->data(), data, size);
    return w->seal();
  }

  void free(const object_id& id) override {
    client_.free(id); // not_found: freed already (e.g. the store closed)
  }

  node_client* client() override {
    return &client_;
  }

private:
  node_client client_;
};

} // namespace

std::shared_ptr<node_access>
node_access::of(std::shared_ptr<node_store> store) {
  return std::make_shared<hosted_node>(std::move(store));
}

std::shared_ptr<node_access> node_access::of(node_client client) {
  return std::make_shared<connected_node>(std::move(client));
}

} // namespace dref::internal
