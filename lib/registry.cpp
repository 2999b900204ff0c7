#include "registry.hpp"

#include <algorithm>
#include <cassert>

namespace corio::detail {

registry::registry(std::size_t workers)
    : shard_count_(workers + 1), shards_(std::make_unique<shard[]>(workers + 1)) {
  if (workers == 1) shards_[0].owner_only = true;
}

void registry::add(task_header* t, std::size_t index) {
  assert(index < shard_count_);
  shard& s = shards_[index];
  std::unique_lock guard(s.lock, std::defer_lock);
  if (!s.owner_only) guard.lock();  // registry.hpp: only the owner touches an owner_only shard
  t->reg_shard = static_cast<std::uint32_t>(index);
  t->reg_prev = nullptr;
  t->reg_next = s.head;
  if (s.head) s.head->reg_prev = t;
  s.head = t;
  ++s.count;
  t->registered = true;
}

void registry::remove(task_header* t) noexcept {
  shard& s = shards_[t->reg_shard];
  std::unique_lock guard(s.lock, std::defer_lock);
  if (!s.owner_only) guard.lock();
  if (!t->registered) return;
  if (t->reg_prev) {
    t->reg_prev->reg_next = t->reg_next;
  } else {
    s.head = t->reg_next;
  }
  if (t->reg_next) t->reg_next->reg_prev = t->reg_prev;
  t->reg_prev = t->reg_next = nullptr;
  t->registered = false;
  --s.count;
}

std::vector<task_header*> registry::snapshot() const {
  std::vector<task_header*> all;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard guard(shards_[i].lock);
    for (task_header* t = shards_[i].head; t; t = t->reg_next) all.push_back(t);
  }
  std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->id > b->id; });
  return all;
}

std::size_t registry::size() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard guard(shards_[i].lock);
    n += shards_[i].count;
  }
  return n;
}

}  // namespace corio::detail
