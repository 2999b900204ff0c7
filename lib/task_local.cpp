// task_local storage: one small map per root task, shared copy-on-write with the tasks it spawns.
//
//  - A task's header holds `locals`, null until the task (or its spawner) set a value.
//  - Spawning shares the spawner's storage (share_locals, task_header.hpp): one reference more.
//  - Writing (set, reset) first makes the storage the task's own: if another task also holds it,
//    the task copies every value into a new storage and drops its reference to the shared one.
//    A storage with more than one reference is therefore never written, and concurrent readers
//    of a shared storage only read.
//  - The header drops its reference when it is freed (task_header::destroy).
//
// Only the task's own code touches its `locals` pointer (its body, and spawns it makes), one
// resumption at a time, so the pointer needs no synchronization; the reference count does.
#include <corio/task_local.hpp>

#include "task_header.hpp"

#include <corio/detail/wait_point.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <vector>

namespace corio::detail {

class local_storage {
 public:
  struct entry {
    const void* key;
    const local_ops* ops;
    void* value;
  };

  local_storage() = default;
  local_storage(const local_storage&) = delete;
  local_storage& operator=(const local_storage&) = delete;
  ~local_storage() {
    for (entry& e : entries) e.ops->destroy(e.value);
  }

  entry* find(const void* key) noexcept {
    for (entry& e : entries) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }

  /// A private copy (one reference) of every value.
  std::unique_ptr<local_storage> clone() const {
    auto copy = std::make_unique<local_storage>();
    copy->entries.reserve(entries.size());
    for (const entry& e : entries) {
      void* v = e.ops->clone(e.value);
      copy->entries.push_back({e.key, e.ops, v});  // reserved: cannot throw
    }
    return copy;
  }

  std::atomic<std::size_t> refs{1};
  std::vector<entry> entries;  // a handful at most: linear search
};

void retain_locals(local_storage* s) noexcept {
  // Relaxed: the caller (the spawner) holds a reference, which keeps `s` alive.
  s->refs.fetch_add(1, std::memory_order_relaxed);
}

void release_locals(local_storage* s) noexcept {
  // Release by every holder, acquire by the last: the destructor sees every holder's accesses
  // done. Pairs also with the acquire load in own_storage.
  if (s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s;
}

namespace {

task_header& require_task() {
  task_header* t = current_task();
  if (t == nullptr) throw std::logic_error("corio::task_local used outside a task");
  return *t;
}

// The task's storage, created or unshared first.
local_storage& own_storage(task_header& t) {
  if (t.locals == nullptr) {
    t.locals = new local_storage;
  } else if (t.locals->refs.load(std::memory_order_acquire) != 1) {
    // Acquire pairs with release_locals: when the count reads 1, the other holders' reads of the
    // values happened before our writes. It cannot rise meanwhile: only this task shares it.
    local_storage* copy = t.locals->clone().release();
    release_locals(std::exchange(t.locals, copy));
  }
  return *t.locals;
}

}  // namespace

const void* local_get(const void* key) {
  task_header& t = require_task();
  if (t.locals == nullptr) return nullptr;
  local_storage::entry* e = t.locals->find(key);
  return e != nullptr ? e->value : nullptr;
}

void local_set(const void* key, const local_ops& ops, void* value) {
  try {
    local_storage& s = own_storage(require_task());
    if (local_storage::entry* e = s.find(key)) {
      e->ops->destroy(std::exchange(e->value, value));
      e->ops = &ops;
      return;
    }
    s.entries.push_back({key, &ops, value});
  } catch (...) {
    ops.destroy(value);
    throw;
  }
}

void local_erase(const void* key) {
  task_header& t = require_task();
  if (t.locals == nullptr || t.locals->find(key) == nullptr) return;
  local_storage& s = own_storage(t);
  local_storage::entry* e = s.find(key);
  e->ops->destroy(e->value);
  *e = s.entries.back();
  s.entries.pop_back();
}

}  // namespace corio::detail
