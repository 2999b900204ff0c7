// timer_heap: a worker's near timers, ordered by deadline (timer_queue.hpp puts far ones in the
// wheel first). Owner-only.
//
// A 4-ary min-heap of (deadline, node) pairs; the nodes live in the sleeping frames, and each
// knows its index, so removal is O(log n). The deadline is kept beside the pointer so that a sift
// compares without touching the nodes (cold lines in frames all over the heap): only the nodes
// that actually move are written, to update their index. Four children per level halve the depth
// of a binary heap, and with 16-byte entries the four children share one or two cache lines.
// Insertion in deadline order (the common case: equal sleeps or read timeouts started one after
// another) does not sift at all.
//
// Invariant: for every entry e, e.deadline_ns == e.node->deadline_ns and
// heap_[e.node->heap_index].node == e.node; a node not in the heap has heap_index == not_queued.
// A node's deadline does not change while it is queued.
#pragma once

#include <corio/time.hpp>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace corio::detail {

class timer_heap {
 public:
  static constexpr std::size_t arity = 4;

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  /// The earliest deadline; only when !empty().
  std::int64_t earliest() const noexcept { return heap_.front().deadline_ns; }

  void insert(timer_node* t) {
    heap_.push_back({t->deadline_ns, t});  // may throw; nothing changed then
    sift_up(heap_.size() - 1, heap_.back());
  }

  /// Room for `n` entries, growing by doubling (so that reserving one more each time stays
  /// amortized O(1)). May throw; nothing changed then.
  void reserve(std::size_t n) {
    if (n > heap_.capacity()) heap_.reserve(std::max(n, 2 * heap_.capacity()));
  }
  /// insert() where reserve() made room: cannot throw.
  void insert_reserved(timer_node* t) noexcept {
    assert(heap_.size() < heap_.capacity());
    heap_.push_back({t->deadline_ns, t});
    sift_up(heap_.size() - 1, heap_.back());
  }

  void remove(timer_node* t) noexcept {
    std::size_t i = t->heap_index;
    assert(i < heap_.size() && heap_[i].node == t);
    t->heap_index = timer_node::not_queued;
    entry last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;  // t was the last entry
    if (i > 0 && heap_[parent(i)].deadline_ns > last.deadline_ns) {
      sift_up(i, last);
    } else {
      sift_down(i, last);
    }
  }

  /// Removes and returns the earliest node if its deadline is <= now, else nullptr.
  timer_node* pop_expired(std::int64_t now_ns) noexcept {
    if (heap_.empty() || heap_.front().deadline_ns > now_ns) return nullptr;
    timer_node* t = heap_.front().node;
    remove(t);
    return t;
  }

  /// Unlinks every node without firing it (shutdown), then lets each drop hook run.
  void clear() noexcept {
    std::vector<entry> dropped;
    dropped.swap(heap_);
    for (const entry& e : dropped) e.node->heap_index = timer_node::not_queued;
    for (const entry& e : dropped) drop(e.node);
  }

  /// Runs a cleared node's drop hook, if it has one.
  static void drop(timer_node* t) noexcept {
    if (t->hooks != nullptr && t->hooks->drop != nullptr) t->hooks->drop(t);
  }

 private:
  struct entry {
    std::int64_t deadline_ns;
    timer_node* node;
  };

  static std::size_t parent(std::size_t i) noexcept { return (i - 1) / arity; }

  void place(std::size_t i, entry e) noexcept {
    heap_[i] = e;
    e.node->heap_index = static_cast<std::uint32_t>(i);
  }

  // Moves the hole at `i` up until `e` fits there.
  void sift_up(std::size_t i, entry e) noexcept {
    while (i > 0) {
      std::size_t p = parent(i);
      if (heap_[p].deadline_ns <= e.deadline_ns) break;
      place(i, heap_[p]);
      i = p;
    }
    place(i, e);
  }

  // Moves the hole at `i` down until `e` fits there.
  void sift_down(std::size_t i, entry e) noexcept {
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t first = arity * i + 1;
      if (first >= n) break;
      std::size_t end = first + arity < n ? first + arity : n;
      std::size_t least = first;
      for (std::size_t c = first + 1; c < end; ++c) {
        if (heap_[c].deadline_ns < heap_[least].deadline_ns) least = c;
      }
      if (heap_[least].deadline_ns >= e.deadline_ns) break;
      place(i, heap_[least]);
      i = least;
    }
    place(i, e);
  }

  std::vector<entry> heap_;
};

// heap_index must land in wait_point's tail padding (see timer_node); LP64 only.
static_assert(sizeof(void*) != 8 || sizeof(timer_node) == 64, "timer_node layout grew");

}  // namespace corio::detail
