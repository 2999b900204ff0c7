// intrusive_fifo: a FIFO of objects linked through one of their own pointer members, so queueing
// never allocates. No locking: its owner synchronises access (a worker's pinned list and deferred
// actions are owner-only; the global queue, the inboxes and the blocking pool hold a mutex).
#pragma once

#include <corio/detail/sched_node.hpp>

#include <cstddef>

namespace corio::detail {

template <class T, T* T::*Next>
class intrusive_fifo {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

  void push(T* n) noexcept {
    n->*Next = nullptr;
    if (tail_) {
      tail_->*Next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
    ++size_;
  }

  /// Moves every element of `other` to the back of this list.
  void splice(intrusive_fifo& other) noexcept {
    if (other.empty()) return;
    if (tail_) {
      tail_->*Next = other.head_;
    } else {
      head_ = other.head_;
    }
    tail_ = other.tail_;
    size_ += other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }

  T* pop() noexcept {
    T* n = head_;
    if (n) {
      head_ = n->*Next;
      if (!head_) tail_ = nullptr;
      n->*Next = nullptr;
      --size_;
    }
    return n;
  }

  /// Unlinks `n` if it is in the list (a linear search: only for short lists and rare calls).
  bool remove(T* n) noexcept {
    T* prev = nullptr;
    for (T* cur = head_; cur != nullptr; prev = cur, cur = cur->*Next) {
      if (cur != n) continue;
      if (prev) {
        prev->*Next = cur->*Next;
      } else {
        head_ = cur->*Next;
      }
      if (tail_ == cur) tail_ = prev;
      cur->*Next = nullptr;
      --size_;
      return true;
    }
    return false;
  }

  /// Forgets every element without touching it (shutdown: the frames they live in are gone).
  void clear() noexcept {
    head_ = tail_ = nullptr;
    size_ = 0;
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
  std::size_t size_ = 0;
};

/// The scheduler's lists of runnable coroutines.
using node_fifo = intrusive_fifo<sched_node, &sched_node::next>;
/// A worker's actions to run after the current resumption.
using action_fifo = intrusive_fifo<deferred_action, &deferred_action::next>;

}  // namespace corio::detail
