// timer_wheel: a worker's far timers, in slots by deadline, without order inside a slot.
// Owner-only.
//
// Most far timers never fire: a read timeout of 10 s is disarmed when the read completes,
// milliseconds later. In the heap, that removal sifts from near the top (the oldest timer has
// the earliest deadline) through every level, writing the index of each node it moves into a
// frame elsewhere in memory. Here a slot is a vector of nodes and a node knows its position in
// it: arming appends, disarming moves the slot's last node into the hole. Both are O(1) and
// touch at most one other node.
//
// Slot number s holds the nodes whose deadline is in [s * width, (s + 1) * width), width = 2^26 ns
// (67 ms); 1,024 slots cover 68.7 s. A slot's nodes go to the heap, which fires them at their
// exact deadline, once the slot's start has passed (advance); the worker sleeps at most until the
// next occupied slot's start (next_start). So the wheel changes when a timer's node is sorted,
// not when it fires.
//
// Invariants: every node held has cursor_ <= (deadline >> shift) < cursor_ + slots (so slot
// numbers map to distinct vectors), and heap_index == in_wheel | its position in its vector.
// Every slot before cursor_ has been moved to the heap. bits_ has a bit set exactly for the
// non-empty vectors. cursor_ <= next_slot_ <= the first occupied slot number (a removal may leave
// it lower: the worker then wakes at that slot's start, finds nothing to move and looks again);
// next_slot_ == no_slot when the wheel is empty.
#pragma once

#include <corio/time.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace corio::detail {

class timer_wheel {
 public:
  static constexpr int shift = 26;
  static constexpr std::int64_t slots = 1024;
  /// In heap_index: the node is in the wheel; the bits below are its position in its slot.
  static constexpr std::uint32_t in_wheel = 1u << 31;

  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }

  /// Moves the wheel's start up to the slot after `now`'s if it holds nothing (a timer is taken
  /// only for slots after that one, and only within one turn of the wheel). `now` may be late.
  void catch_up(std::int64_t now) noexcept {
    if (count_ == 0 && (now >> shift) + 1 > cursor_) cursor_ = (now >> shift) + 1;
  }

  /// Whether a deadline belongs here: at least one whole slot after the next slot to move (a
  /// nearer one would be moved to the heap within 67 ms anyway), and within one turn.
  bool takes(std::int64_t deadline_ns) const noexcept {
    std::int64_t s = deadline_ns >> shift;
    return s >= cursor_ + 1 && s < cursor_ + slots;
  }

  /// Only for a deadline takes() accepts. May throw (allocation); nothing changed then.
  void insert(timer_node* t) {
    const std::int64_t s = t->deadline_ns >> shift;
    std::vector<timer_node*>& v = slot_[index(s)];
    v.push_back(t);
    t->heap_index = in_wheel | static_cast<std::uint32_t>(v.size() - 1);
    bits_[index(s) / 64] |= std::uint64_t{1} << (index(s) % 64);
    if (s < next_slot_) next_slot_ = s;
    ++count_;
  }

  void remove(timer_node* t) noexcept {
    const std::size_t i = index(t->deadline_ns >> shift);
    std::vector<timer_node*>& v = slot_[i];
    const std::uint32_t pos = t->heap_index & ~in_wheel;
    timer_node* last = v.back();
    v[pos] = last;
    last->heap_index = in_wheel | pos;
    v.pop_back();
    t->heap_index = timer_node::not_queued;
    if (v.empty()) bits_[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    if (--count_ == 0) next_slot_ = no_slot;
  }

  /// When the worker must next call advance: the start of the first occupied slot (a lower
  /// bound); max() when empty.
  std::int64_t next_start() const noexcept {
    return count_ == 0 ? std::numeric_limits<std::int64_t>::max() : next_slot_ << shift;
  }

  /// Hands every node of the slots that started by `now` to `to_heap` (which inserts it into the
  /// heap and must not throw: timer_queue reserves the room), clearing its wheel state first.
  /// Each slot passed gives its vector's memory back: it is next used one turn later, and so a
  /// slot that once held many timers does not keep their room for good.
  template <class F>
  void advance(std::int64_t now, F&& to_heap) noexcept {
    const std::int64_t due = now >> shift;
    if (due < cursor_) return;
    // At most one turn: after that every vector has been visited.
    const std::int64_t last = due < cursor_ + slots - 1 ? due : cursor_ + slots - 1;
    for (std::int64_t s = cursor_; s <= last; ++s) {
      std::vector<timer_node*>& v = slot_[index(s)];
      for (timer_node* t : v) {
        t->heap_index = timer_node::not_queued;
        to_heap(t);
      }
      count_ -= v.size();
      std::vector<timer_node*>().swap(v);
      bits_[index(s) / 64] &= ~(std::uint64_t{1} << (index(s) % 64));
    }
    cursor_ = due + 1;
    next_slot_ = count_ == 0 ? no_slot : first_occupied();
  }

  /// Unlinks every node (shutdown) and calls `dropped` for each.
  template <class F>
  void clear(F&& dropped) noexcept {
    for (std::vector<timer_node*>& v : slot_) {
      std::vector<timer_node*> nodes;
      nodes.swap(v);
      for (timer_node* t : nodes) t->heap_index = timer_node::not_queued;
      for (timer_node* t : nodes) dropped(t);
    }
    bits_ = {};
    count_ = 0;
    next_slot_ = no_slot;
  }

 private:
  static std::size_t index(std::int64_t s) noexcept {
    return static_cast<std::size_t>(s) & static_cast<std::size_t>(slots - 1);
  }

  // The first occupied slot number at or after cursor_; only when count_ != 0.
  std::int64_t first_occupied() const noexcept {
    const std::size_t start = index(cursor_);
    constexpr std::size_t words = slots / 64;
    // Two passes over the words cover the wrap-around; the first word is masked to start.
    for (std::size_t k = 0; k <= words; ++k) {
      const std::size_t w = (start / 64 + k) % words;
      std::uint64_t bits = bits_[w];
      if (k == 0) bits &= ~std::uint64_t{0} << (start % 64);
      if (bits != 0) {
        const std::size_t i = w * 64 + static_cast<std::size_t>(std::countr_zero(bits));
        const std::size_t offset = (i + slots - start) % slots;
        return cursor_ + static_cast<std::int64_t>(offset);
      }
    }
    return cursor_;  // unreachable while count_ != 0
  }

  std::array<std::vector<timer_node*>, slots> slot_;
  std::array<std::uint64_t, slots / 64> bits_{};
  std::int64_t cursor_ = std::numeric_limits<std::int64_t>::min() / 2;
  static constexpr std::int64_t no_slot = std::numeric_limits<std::int64_t>::max() >> shift;
  std::int64_t next_slot_ = no_slot;
  std::size_t count_ = 0;
};

}  // namespace corio::detail
