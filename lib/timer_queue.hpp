// timer_queue: a worker's timers. Owner-only.
//
// Near deadlines go to the heap (timer_heap.hpp), which fires each at its exact time; deadlines
// one slot or more ahead go to the wheel (timer_wheel.hpp), which holds them unsorted and hands
// each slot's nodes to the heap when the slot starts. A node's heap_index says where it is:
// not_queued, a heap index, or timer_wheel::in_wheel with its position in its slot.
//
// Moving a slot into the heap must not fail (it happens in the poll, where an allocation failure
// has nobody to go to), so the heap's vector keeps room for every node in the wheel as well:
// insert reserves it, doubling, and may throw there, where the arming task gets the exception.
#pragma once

#include "timer_heap.hpp"
#include "timer_wheel.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace corio::detail {

class timer_queue {
 public:
  bool empty() const noexcept { return heap_.empty() && wheel_.empty(); }
  std::size_t size() const noexcept { return heap_.size() + wheel_.size(); }

  /// When the worker must look at its timers next: the earliest deadline in the heap, or the
  /// start of the wheel's next occupied slot if that comes first. Only when !empty().
  std::int64_t earliest() const noexcept {
    const std::int64_t w = wheel_.next_start();
    return heap_.empty() ? w : std::min(heap_.earliest(), w);
  }

  /// `now` is any past clock reading (the worker's last poll): it lets an empty wheel move on.
  /// May throw (allocation); nothing changed then.
  void insert(timer_node* t, std::int64_t now) {
    // Room for every node either side while the wheel holds any: a heap insertion must not use
    // up the room that the wheel's nodes will need when they move over.
    wheel_.catch_up(now);
    const bool far = wheel_.takes(t->deadline_ns);
    if (far || !wheel_.empty()) heap_.reserve(heap_.size() + wheel_.size() + 1);
    if (far) {
      wheel_.insert(t);
    } else {
      heap_.insert(t);
    }
  }

  void remove(timer_node* t) noexcept {
    if (t->heap_index & timer_wheel::in_wheel) {
      wheel_.remove(t);
    } else {
      heap_.remove(t);
    }
  }

  /// Moves the wheel's slots that started by `now` into the heap; call before pop_expired(now).
  void advance(std::int64_t now) noexcept {
    wheel_.advance(now, [this](timer_node* t) noexcept { heap_.insert_reserved(t); });
  }

  /// Removes and returns the earliest node if its deadline is <= now, else nullptr. Every node
  /// due by `now` is in the heap once advance(now) ran.
  timer_node* pop_expired(std::int64_t now) noexcept { return heap_.pop_expired(now); }

  /// Unlinks every node without firing it (shutdown), then lets each drop hook run.
  void clear() noexcept {
    heap_.clear();
    wheel_.clear([](timer_node* t) noexcept { timer_heap::drop(t); });
  }

  const timer_heap& heap() const noexcept { return heap_; }
  const timer_wheel& wheel() const noexcept { return wheel_; }

 private:
  timer_heap heap_;
  timer_wheel wheel_;
};

}  // namespace corio::detail
