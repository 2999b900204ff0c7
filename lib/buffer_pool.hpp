// buffer_pool: one worker's ring of provided buffers for read_some_pooled (pooled_read.cpp).
//
// Ownership of a buffer (by its id, `bid`):
//   in the ring   -- the kernel may pick it for the next multishot receive on this worker's ring;
//   out           -- a CQE named it: it sits in a reader's queue (pooled_read.cpp) or in a
//                    pooled_buffer the user holds.
// A buffer goes back into the ring on the owner worker's thread only (the ring's tail is written
// by one thread): directly when returned there, else through `returns_`, a lock-free stack of ids
// that other threads push onto and the owner empties (drain_returns) before each poll.
//
// Life: a worker creates its pool lazily, at the first pooled read of a session, and retires it
// when its ring has been drained at the session's end (retire). Buffers still out, and readers
// still bound to the pool, then keep its memory alive: the last of them to let go frees it
// (orphan count below). So a pooled_buffer may outlive the session, the runtime, and the worker
// thread.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace corio::detail {

class ring;
class worker;

class buffer_pool {
 public:
  /// Registers a ring of `count` (a power of two, at most 32768) buffers of `size` bytes each on
  /// `r` as buffer group `group`. Throws std::system_error (out of memory, RLIMIT_MEMLOCK, ...).
  buffer_pool(worker& owner, ring& r, unsigned count, std::size_t size, unsigned group);
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;

  unsigned group() const noexcept { return group_; }
  unsigned count() const noexcept { return count_; }
  std::size_t buffer_size() const noexcept { return size_; }
  std::byte* address(std::uint16_t bid) const noexcept { return base_ + std::size_t{bid} * size_; }

  // ---- owner worker only, while the pool is live ----
  /// Buffers in the ring: exact, since only the owner adds them and each one the kernel takes
  /// comes back in a CQE the owner reaps (note_taken). 0: a receive would end with ENOBUFS.
  unsigned available() const noexcept { return available_; }
  /// A CQE named a buffer: it is out of the ring now.
  void note_taken() noexcept {
    --available_;
    note_level();
  }
  /// Links of the readers' queues of received buffers (pooled_read.cpp): the next id and the
  /// byte count of a buffer that is out.
  std::uint32_t& link(std::uint16_t bid) noexcept { return next_[bid]; }
  std::uint32_t& length(std::uint16_t bid) noexcept { return lens_[bid]; }
  /// A reader (pooled_read.cpp) binds itself to the pool: the pool outlives it, like a buffer.
  void bind_reader() noexcept { ++readers_; }
  /// Puts `bid` back into the ring.
  void recycle(std::uint16_t bid) noexcept;
  /// Moves the ids other threads returned into the ring; cheap when there are none.
  void drain_returns() noexcept {
    if (returns_.load(std::memory_order_relaxed) != empty_stack) drain_returns_slow();
  }
  /// At the session's end, after the owner's ring was drained (no receive can take a buffer any
  /// more) and before the ring is closed: detaches the pool from the worker. Frees it unless
  /// buffers are still out or readers bound; then the last of them to let go frees it.
  void retire() noexcept;

  // ---- any thread ----
  /// Whether the session of the owner is over (set on its thread before anything else can see
  /// the pool retired; acquire: a reader that sees it sees everything the owner did before).
  bool retired() const noexcept { return retired_.load(std::memory_order_acquire); }
  /// The reader lets go: on the owner's thread while live, or on any thread once retired.
  void unbind_reader() noexcept;
  /// Gives back `bid`: recycled at once on the owner's thread during the session, else queued
  /// for the owner, or counted off once the pool is retired.
  void give_back(std::uint16_t bid) noexcept;

  /// Pools not yet freed, over the process: 0 once every pool was retired and all its buffers
  /// came back (the tests' "every provided buffer returned" invariant).
  static std::int64_t live_count() noexcept;

 private:
  ~buffer_pool();
  void drain_returns_slow() noexcept;
  void note_level() noexcept;  // the owner's stats: buffers out
  // On the owner's thread while live: recycle directly.
  bool owned_here() const noexcept;

  static constexpr std::uint32_t empty_stack = 0;
  static constexpr std::uint32_t retired_stack = 0xffffffffu;

  worker* owner_;
  ring& ring_;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t ring_bytes_ = 0;
  std::byte* base_ = nullptr;
  std::size_t base_bytes_ = 0;
  std::size_t size_;
  unsigned count_;
  unsigned group_;
  unsigned available_ = 0;    // owner-only
  std::int64_t readers_ = 0;  // owner-only: readers bound to the pool
  // Set by retire() on the owner's thread; read by give_back on any thread (acquire).
  std::atomic<bool> retired_{false};
  // The return stack: bid + 1 of the top entry (0: empty; retired_stack: retired, push no more),
  // linked through next_[bid]. Push-only CAS plus exchange-all by the owner, so no ABA. A
  // pusher's write of next_[bid] is published by its release CAS and read after the owner's
  // acquire exchange.
  std::atomic<std::uint32_t> returns_{empty_stack};
  std::unique_ptr<std::uint32_t[]> next_;
  std::unique_ptr<std::uint32_t[]> lens_;
  // After retirement: buffers still out plus readers still bound, minus those given back or
  // unbound since. retire() adds the count, each late give_back or unbind subtracts 1, and
  // whoever brings it to 0 frees the pool (late ones may come first: it may go negative).
  std::atomic<std::int64_t> orphans_{0};
};

}  // namespace corio::detail
