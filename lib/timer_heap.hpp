// timer_heap: a worker's sleeping tasks, ordered by deadline. Owner-only.
//
// A binary min-heap of pointers to timer_nodes (which live in the sleeping frames); each node
// knows its index, so removal is O(log n). Insertion in deadline order (the common case: equal
// sleeps started one after another) does not sift at all.
#pragma once

#include <corio/time.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace corio::detail {

class timer_heap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  /// The earliest deadline; only when !empty().
  std::int64_t earliest() const noexcept { return heap_.front()->deadline_ns; }

  void insert(timer_node* t);
  void remove(timer_node* t) noexcept;
  /// Removes and returns the earliest node if its deadline is <= now, else nullptr.
  timer_node* pop_expired(std::int64_t now_ns) noexcept;
  /// Unlinks every node without firing it (shutdown).
  void clear() noexcept;

 private:
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void place(std::size_t i, timer_node* t) noexcept {
    heap_[i] = t;
    t->heap_index = static_cast<std::uint32_t>(i);
  }

  std::vector<timer_node*> heap_;
};

}  // namespace corio::detail
