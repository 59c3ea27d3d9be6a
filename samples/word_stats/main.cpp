// Word statistics over generated documents, the dref way.
//
// 1. `make_document` tasks write documents in the worker processes; the
//    driver only holds refs to them.
// 2. `count_words` tasks take those refs: each runs where its document is.
// 3. A tree of `merge` calls combines the counts, ref by ref.
// 4. A stateful `leaderboard` actor keeps the running totals of each batch.
// 5. The driver fetches the final values and checks them against a count
//    it makes itself.

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "dref/actors/all.hpp"

namespace {

const std::vector<std::string> vocabulary = {
  "actor", "ref", "owner", "borrow", "value", "task", "worker", "lineage",
  "store", "free", "node", "message", "cluster", "durable", "state", "call"};

// Deterministic pseudo-random text, so the driver can check the result.
std::string document_text(int32_t seed, int32_t words) {
  std::string text;
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (int32_t i = 0; i < words; ++i) {
    x = x * 1664525u + 1013904223u;
    auto k = (x >> 8) % vocabulary.size();
    k = std::min(k, (x >> 20) % vocabulary.size()); // skewed frequencies
    text += vocabulary[k];
    text += ' ';
  }
  return text;
}

// A value that remembers which processes worked on it.
struct counts {
  std::map<std::string, int64_t> words;
  std::set<int32_t> pids;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, counts& x) {
  return f(caf::meta::type_name("demo.counts"), x.words, x.pids);
}

struct document {
  int32_t pid = 0;
  std::string text;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, document& x) {
  return f(caf::meta::type_name("demo.document"), x.pid, x.text);
}

int32_t self_pid() {
  return static_cast<int32_t>(getpid());
}

document make_document(int32_t seed, int32_t words) {
  return document{self_pid(), document_text(seed, words)};
}

counts count_words(const document& doc) {
  counts c;
  std::istringstream in{doc.text};
  std::string w;
  while (in >> w)
    ++c.words[w];
  c.pids = {doc.pid, self_pid()};
  return c;
}

counts merge(const counts& a, const counts& b) {
  counts c = a;
  for (auto& [w, n] : b.words)
    c.words[w] += n;
  c.pids.insert(b.pids.begin(), b.pids.end());
  c.pids.insert(self_pid());
  return c;
}

// A stateful service: keeps totals across batches.
class leaderboard {
public:
  int64_t add(const counts& c) {
    for (auto& [w, n] : c.words)
      totals_[w] += n;
    return ++batches_;
  }

  std::vector<std::string> top(int32_t n) const {
    std::vector<std::pair<int64_t, std::string>> v;
    for (auto& [w, k] : totals_)
      v.emplace_back(k, w);
    std::sort(v.rbegin(), v.rend());
    std::vector<std::string> out;
    for (int32_t i = 0; i < n && i < static_cast<int32_t>(v.size()); ++i)
      out.push_back(v[i].second + "=" + std::to_string(v[i].first));
    return out;
  }

  int32_t pid() const {
    return self_pid();
  }

private:
  std::map<std::string, int64_t> totals_;
  int64_t batches_ = 0;
};

std::string pid_list(const std::set<int32_t>& pids) {
  std::string s;
  for (auto p : pids)
    s += (s.empty() ? "" : ", ") + std::to_string(p);
  return s;
}

} // namespace

DREF_REMOTE(make_document);
DREF_REMOTE(count_words);
DREF_REMOTE(merge);
DREF_ACTOR(leaderboard, &leaderboard::add, &leaderboard::top,
           &leaderboard::pid);

int main() {
  using namespace std::chrono_literals;
  dref::runtime rt; // no address: a local cluster, one worker per core
  if (!rt.running()) {
    std::fprintf(stderr, "cannot start: %s\n",
                 caf::to_string(rt.status()).c_str());
    return 1;
  }
  std::set<int32_t> worker_pids;
  for (auto& w : rt.workers())
    worker_pids.insert(w.pid);
  std::printf("driver pid %d, %zu worker processes (pids %s)\n", getpid(),
              worker_pids.size(), pid_list(worker_pids).c_str());
  constexpr int32_t docs_per_batch = 8;
  constexpr int32_t words_per_doc = 20000;
  constexpr int32_t batches = 3;
  auto board = rt.spawn<leaderboard>();
  std::map<std::string, int64_t> expected;
  std::set<int32_t> used;
  for (int32_t b = 0; b < batches; ++b) {
    // 1. + 2. Documents and their counts stay in the workers.
    std::vector<dref::ref<counts>> level;
    for (int32_t i = 0; i < docs_per_batch; ++i) {
      auto doc = rt.call(make_document, b * docs_per_batch + i, words_per_doc);
      level.push_back(rt.call(count_words, doc));
    }
    // 3. Merge tree: each merge takes two refs and returns a new one.
    while (level.size() > 1) {
      std::vector<dref::ref<counts>> next;
      for (size_t i = 0; i + 1 < level.size(); i += 2)
        next.push_back(rt.call(merge, level[i], level[i + 1]));
      if (level.size() % 2 == 1)
        next.push_back(level.back());
      level = std::move(next);
    }
    // 4. The actor takes the batch's ref; its calls run in order.
    auto batch_no = board.call(&leaderboard::add, level.front());
    auto total = rt.get(level.front(), 30s);
    auto n = rt.get(batch_no, 30s);
    if (!total || !n) {
      std::fprintf(stderr, "batch %d failed: %s\n", b,
                   caf::to_string(total ? n.error() : total.error()).c_str());
      return 1;
    }
    int64_t words = 0;
    for (auto& [w, k] : total->words)
      words += k;
    used.insert(total->pids.begin(), total->pids.end());
    std::printf("batch %d: %d documents, %lld words, worked on by pids %s\n",
                static_cast<int>(*n), docs_per_batch,
                static_cast<long long>(words), pid_list(total->pids).c_str());
    for (int32_t i = 0; i < docs_per_batch; ++i) {
      std::istringstream in{document_text(b * docs_per_batch + i, words_per_doc)};
      std::string w;
      while (in >> w)
        ++expected[w];
    }
  }
  // 5. Fetch the leaderboard and check it against the driver's own count.
  auto top = rt.get(board.call(&leaderboard::top, int32_t{5}), 30s);
  auto where = rt.get(board.call(&leaderboard::pid), 30s);
  if (!top || !where) {
    std::fprintf(stderr, "leaderboard failed\n");
    return 1;
  }
  std::printf("leaderboard actor lives in pid %d; top words:", *where);
  for (auto& s : *top)
    std::printf(" %s", s.c_str());
  std::printf("\n");
  std::vector<std::pair<int64_t, std::string>> v;
  for (auto& [w, k] : expected)
    v.emplace_back(k, w);
  std::sort(v.rbegin(), v.rend());
  bool ok = top->size() == 5 && used.count(getpid()) == 0;
  for (size_t i = 0; ok && i < 5; ++i)
    ok = (*top)[i] == v[i].second + "=" + std::to_string(v[i].first);
  std::printf("checked against a local count: %s; no task ran in the driver: "
              "%s\n",
              ok ? "match" : "MISMATCH",
              used.count(getpid()) == 0 ? "yes" : "NO");
  return ok ? 0 : 1;
}
