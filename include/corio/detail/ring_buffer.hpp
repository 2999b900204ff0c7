// A growable FIFO of values in one circular array: a channel's buffer.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace corio::detail {

/// FIFO storage for nothrow-move-constructible values.
///
/// Invariants: `cap_` is 0 or a power of two; the values live in slots `(head_ + i) & (cap_ - 1)`
/// for i < `size_`, every other slot is raw storage. Growing moves the values into a twice as
/// large array in order (head at slot 0); it is the only operation that allocates, and it leaves
/// the buffer unchanged when the allocation throws.
///
/// Why not std::deque: a channel asks for its size on every send (is there room?), which a deque
/// computes from its block map, and a deque allocates and frees a block every few hundred values
/// while values flow. This array is allocated as the queue first grows and then reused.
template <class T>
class ring_buffer {
  static_assert(std::is_nothrow_move_constructible_v<T>);

 public:
  ring_buffer() noexcept = default;
  ring_buffer(const ring_buffer&) = delete;
  ring_buffer& operator=(const ring_buffer&) = delete;
  ~ring_buffer() {
    while (size_ != 0) pop_front();
    release(slots_);
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  T& front() noexcept { return slots_[head_]; }
  void pop_front() noexcept {
    std::destroy_at(&slots_[head_]);
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  /// Throws std::bad_alloc (leaving the buffer as it was) if it must grow and cannot.
  void push_back(T&& value) {
    if (size_ == cap_) grow();
    std::construct_at(&slots_[(head_ + size_) & (cap_ - 1)], std::move(value));
    ++size_;
  }

 private:
  static constexpr std::size_t first_capacity = 8;

  static T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignof(T)}));
  }
  static void release(T* p) noexcept {
    if (p != nullptr) ::operator delete (p, std::align_val_t{alignof(T)});
  }

  void grow() {
    std::size_t cap = cap_ == 0 ? first_capacity : cap_ * 2;
    T* slots = allocate(cap);
    for (std::size_t i = 0; i < size_; ++i) {
      T& from = slots_[(head_ + i) & (cap_ - 1)];
      std::construct_at(&slots[i], std::move(from));
      std::destroy_at(&from);
    }
    release(slots_);
    slots_ = slots;
    cap_ = cap;
    head_ = 0;
  }

  T* slots_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace corio::detail
