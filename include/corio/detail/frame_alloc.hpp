// Every coroutine frame and task header is allocated through these two functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace corio::detail {

/// Allocates `size` bytes for a coroutine frame or a task header. Small blocks come from a
/// per-thread cache of recently freed blocks of the same size class, refilled in batches with
/// blocks that other threads' full caches passed on; the rest from operator new.
/// Throws std::bad_alloc like operator new.
[[nodiscard]] void* frame_alloc(std::size_t size);

/// Returns a block from frame_alloc; `size` must be the size it was allocated with. The block may
/// be freed on another thread than the one that allocated it: it goes to the freeing thread's
/// cache.
void frame_free(void* block, std::size_t size) noexcept;

/// Number of blocks allocated by frame_alloc and not yet freed, over all threads. Exact when no
/// other thread is allocating or freeing (the test suite reads it after block_on returned).
[[nodiscard]] std::int64_t live_frames() noexcept;

/// How many of the calling thread's frame_alloc requests went to operator new (on a live thread;
/// for tests: whether a request was served from a cache).
[[nodiscard]] std::int64_t frame_heap_allocations() noexcept;

/// fork(): the prepare handler takes every lock of the cache's shared part, the parent and child
/// handlers release them (fork_guard.cpp), so that a child never inherits one held by a thread it
/// does not have.
void frame_transfer_lock_all() noexcept;
void frame_transfer_unlock_all() noexcept;

/// Turns the per-thread cache on or off (on by default); only the benchmarks switch it, to compare
/// against plain operator new. Blocks allocated either way may be freed either way.
void set_frame_recycling(bool on) noexcept;

}  // namespace corio::detail
