// node_fifo: an intrusive FIFO of sched_nodes, linked through sched_node::next. No locking: the
// owner of a node_fifo synchronises access (a worker's pinned list is owner-only; the global
// queue and the inboxes wrap one in a mutex).
#pragma once

#include <corio/detail/sched_node.hpp>

#include <cstddef>

namespace corio::detail {

class node_fifo {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

  void push(sched_node* n) noexcept {
    n->next = nullptr;
    if (tail_) {
      tail_->next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
    ++size_;
  }

  /// Moves every node of `other` to the back of this list.
  void splice(node_fifo& other) noexcept {
    if (other.empty()) return;
    if (tail_) {
      tail_->next = other.head_;
    } else {
      head_ = other.head_;
    }
    tail_ = other.tail_;
    size_ += other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }

  sched_node* pop() noexcept {
    sched_node* n = head_;
    if (n) {
      head_ = n->next;
      if (!head_) tail_ = nullptr;
      n->next = nullptr;
      --size_;
    }
    return n;
  }

  /// Forgets every node without touching it (shutdown: the frames they point into are gone).
  void clear() noexcept {
    head_ = tail_ = nullptr;
    size_ = 0;
  }

 private:
  sched_node* head_ = nullptr;
  sched_node* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace corio::detail
