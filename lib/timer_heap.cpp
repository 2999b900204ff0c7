#include "timer_heap.hpp"

#include <cassert>
#include <utility>

namespace corio::detail {

void timer_heap::insert(timer_node* t) {
  heap_.push_back(t);
  t->heap_index = static_cast<std::uint32_t>(heap_.size() - 1);
  sift_up(heap_.size() - 1);
}

void timer_heap::remove(timer_node* t) noexcept {
  std::size_t i = t->heap_index;
  assert(i < heap_.size() && heap_[i] == t);
  t->heap_index = timer_node::not_queued;
  timer_node* last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;  // t was the last element
  place(i, last);
  sift_up(i);
  sift_down(last->heap_index);
}

timer_node* timer_heap::pop_expired(std::int64_t now_ns) noexcept {
  if (heap_.empty() || heap_.front()->deadline_ns > now_ns) return nullptr;
  timer_node* t = heap_.front();
  remove(t);
  return t;
}

void timer_heap::clear() noexcept {
  std::vector<timer_node*> dropped;
  dropped.swap(heap_);
  for (timer_node* t : dropped) t->heap_index = timer_node::not_queued;
  for (timer_node* t : dropped) {
    if (t->hooks != nullptr && t->hooks->drop != nullptr) t->hooks->drop(t);
  }
}

void timer_heap::sift_up(std::size_t i) noexcept {
  timer_node* t = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->deadline_ns <= t->deadline_ns) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void timer_heap::sift_down(std::size_t i) noexcept {
  timer_node* t = heap_[i];
  std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->deadline_ns < heap_[child]->deadline_ns) ++child;
    if (heap_[child]->deadline_ns >= t->deadline_ns) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, t);
}

// heap_index must land in wait_point's tail padding (see timer_node); LP64 only.
static_assert(sizeof(void*) != 8 || sizeof(timer_node) == 72, "timer_node layout grew");

}  // namespace corio::detail
