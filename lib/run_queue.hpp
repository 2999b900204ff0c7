// run_queue: a worker's bounded FIFO of ready tasks, from which idle peers steal half.
//
// The owner pushes at the tail and pops at the head (FIFO, so a task that yields goes behind
// every task that was ready before it); thieves take the older half from the head. The design is
// tokio's local queue (tokio/src/runtime/scheduler/multi_thread/queue.rs), restated here.
//
// Encoding. `tail_` is a free-running u32 written only by the owner. `head_` is a u64 packing two
// free-running u32 indexes: `steal` (high half) and `real` (low half). Slot of index i: i & mask.
//   [real, tail)   items available to the owner and to thieves;
//   [steal, real)  items a thief has claimed and is still copying out; their slots may not be
//                  reused yet. steal == real when no steal is in progress.
//
// Invariants.
//   I1  tail - steal <= Capacity: the owner writes slot tail only if tail - steal < Capacity,
//       so it never overwrites a slot a thief is still reading.
//   I2  at most one steal is in progress: a thief that sees steal != real backs off.
//   I3  every pushed item is taken exactly once: by the owner's CAS that moves `real` past it
//       (pop, overflow), or by the thief's claiming CAS that moves `real` past it.
//
// Memory orders (each names its pair).
//   - push: slot store relaxed, then tail_.store(release) -- pairs with the acquire load of
//     tail_ in steal_into2 / approx_len, which makes the slot contents visible to thieves.
//   - thief's claiming CAS on head_ (acq_rel) -- the acquire side pairs with the owner's CASes
//     on head_; the release side orders nothing the owner reads before the next CAS.
//   - thief's finishing CAS (steal := real, acq_rel) -- its release pairs with the owner's
//     acquire load of head_ in push: the thief's slot reads happen before the owner reuses them.
//   - slots are std::atomic<T> accessed relaxed: the orders above give all the happens-before
//     needed; atomics only keep the formal model (and TSan) free of data races.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <type_traits>

namespace corio::detail {

// `Atomic` is std::atomic in the runtime; test/model substitutes an instrumented atomic with the
// same interface subset (load, store, compare_exchange_weak/strong) to explore interleavings.
template <class T, std::uint32_t Capacity, template <class> class Atomic = std::atomic>
class run_queue {
  static_assert(std::is_pointer_v<T>, "slots hold pointers");
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "power of two");
  static constexpr std::uint32_t mask = Capacity - 1;

 public:
  static constexpr std::uint32_t capacity = Capacity;

  run_queue() noexcept {
    for (auto& s : buf_) s.store(nullptr, std::memory_order_relaxed);
  }
  run_queue(const run_queue&) = delete;
  run_queue& operator=(const run_queue&) = delete;

  /// owner-only. Appends `item`. When the queue is full, moves the older half plus `item` to
  /// `overflow(T* items, uint32 n)` (the global queue) instead.
  template <class Overflow>
  void push(T item, Overflow&& overflow) {
    for (;;) {
      std::uint64_t head = head_.load(std::memory_order_acquire);  // pairs: thief's finishing CAS
      std::uint32_t steal = unpack_steal(head);
      std::uint32_t real = unpack_real(head);
      std::uint32_t tail = tail_.load(std::memory_order_relaxed);  // owner-only
      if (tail - steal < Capacity) {
        buf_[tail & mask].store(item, std::memory_order_relaxed);
        tail_.store(tail + 1, std::memory_order_release);  // pairs: acquire of tail_ by thieves
        return;
      }
      if (steal != real) {
        // Full while a thief copies out: the slots free up shortly. Send only this item away.
        overflow(&item, 1);
        return;
      }
      if (push_overflow(item, real, tail, overflow)) return;
      // A thief claimed items between our load and CAS: there is room now; retry.
    }
  }

  /// owner-only. Takes the oldest item, or nullptr when empty.
  T pop() noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t steal = unpack_steal(head);
      std::uint32_t real = unpack_real(head);
      std::uint32_t tail = tail_.load(std::memory_order_relaxed);  // owner-only
      if (real == tail) return nullptr;
      std::uint32_t next_real = real + 1;
      // While a steal is in progress only `real` moves; `steal` is the thief's to reset.
      std::uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
      if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return buf_[real & mask].load(std::memory_order_relaxed);
      }
    }
  }

  /// owner-only, and only for a queue no thief can reach (a runtime with one worker): pop()
  /// without its locked CAS. Nobody else writes head_, so `steal` equals `real`, and a plain
  /// store moves both past the item.
  T pop_unstolen() noexcept {
    std::uint32_t real = unpack_real(head_.load(std::memory_order_relaxed));
    if (real == tail_.load(std::memory_order_relaxed)) return nullptr;
    head_.store(pack(real + 1, real + 1), std::memory_order_relaxed);
    return buf_[real & mask].load(std::memory_order_relaxed);
  }

  /// Called by the owner of `dst` (the thief) on a peer's queue: moves about half of this queue's
  /// items into `dst` and returns one of them to run now, or nullptr if nothing was stolen.
  T steal_into(run_queue& dst) noexcept {
    std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);  // dst owner-only
    std::uint32_t dst_steal = unpack_steal(dst.head_.load(std::memory_order_acquire));
    if (dst_tail - dst_steal > Capacity / 2) return nullptr;  // no room for half a queue
    std::uint32_t n = steal_into2(dst, dst_tail);
    if (n == 0) return nullptr;
    --n;
    T ret = dst.buf_[(dst_tail + n) & mask].load(std::memory_order_relaxed);
    if (n > 0) dst.tail_.store(dst_tail + n, std::memory_order_release);  // pairs: thieves of dst
    return ret;
  }

  /// Any thread. A racy length: exact when no other thread touches the queue.
  std::uint32_t approx_len() const noexcept {
    // Read head before tail: tail only grows, so the difference cannot go negative.
    std::uint32_t real = unpack_real(head_.load(std::memory_order_seq_cst));
    std::uint32_t tail = tail_.load(std::memory_order_seq_cst);
    return tail - real;
  }

  /// owner-only, with no thief active (shutdown): forgets every item without taking it.
  void unsync_clear() noexcept {
    std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    head_.store(pack(tail, tail), std::memory_order_relaxed);
  }

 private:
  static std::uint32_t unpack_steal(std::uint64_t v) noexcept {
    return static_cast<std::uint32_t>(v >> 32);
  }
  static std::uint32_t unpack_real(std::uint64_t v) noexcept {
    return static_cast<std::uint32_t>(v);
  }
  static std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (std::uint64_t{steal} << 32) | real;
  }

  template <class Overflow>
  bool push_overflow(T item, std::uint32_t head, std::uint32_t tail, Overflow& overflow) {
    constexpr std::uint32_t n = Capacity / 2;
    assert(tail - head == Capacity);
    (void)tail;
    std::uint64_t prev = pack(head, head);
    // Claim the older half for the owner, exactly like a pop of n items. Release: nothing to
    // publish; acquire on failure is not needed since push reloads head_.
    if (!head_.compare_exchange_strong(prev, pack(head + n, head + n), std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return false;
    }
    T batch[n + 1];
    for (std::uint32_t i = 0; i < n; ++i)
      batch[i] = buf_[(head + i) & mask].load(std::memory_order_relaxed);
    batch[n] = item;
    overflow(batch, n + 1);
    return true;
  }

  // Claims half of [real, tail), copies it into dst starting at dst_tail, then ends the steal.
  std::uint32_t steal_into2(run_queue& dst, std::uint32_t dst_tail) noexcept {
    std::uint64_t prev = head_.load(std::memory_order_acquire);
    std::uint64_t next;
    std::uint32_t n;
    for (;;) {
      std::uint32_t steal = unpack_steal(prev);
      std::uint32_t real = unpack_real(prev);
      std::uint32_t tail = tail_.load(std::memory_order_acquire);  // pairs: owner's push
      if (steal != real) return 0;                                 // I2: another thief
      n = tail - real;
      n -= n / 2;  // half, rounded up (at most Capacity / 2)
      if (n == 0) return 0;
      next = pack(steal, real + n);
      if (head_.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        break;
      }
    }
    std::uint32_t first = unpack_steal(next);
    for (std::uint32_t i = 0; i < n; ++i) {
      T item = buf_[(first + i) & mask].load(std::memory_order_relaxed);
      dst.buf_[(dst_tail + i) & mask].store(item, std::memory_order_relaxed);
    }
    // End the steal: steal := real. The owner may have popped meanwhile (moving real), so retry.
    prev = next;
    for (;;) {
      std::uint32_t real = unpack_real(prev);
      if (head_.compare_exchange_weak(prev, pack(real, real), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return n;
      }
    }
  }

  alignas(64) Atomic<std::uint64_t> head_{0};
  alignas(64) Atomic<std::uint32_t> tail_{0};
  alignas(64) Atomic<T> buf_[Capacity];
};

}  // namespace corio::detail
