// Per-thread recycling of coroutine frames and task headers.
//
// Each thread keeps, per size class up to 4 KiB (16-byte steps up to 1 KiB, 64-byte steps above),
// a short free list of blocks it freed: at most 64 blocks, and at most about 64 KiB in the classes
// above 1 KiB. An allocation of that class takes the most recently freed block. A block freed on
// another thread than its allocator's goes to the freeing thread's list.
//
// Frames above 1 KiB are common: every io awaiter carries its deadline timer and arguments (about
// 300 bytes), and GCC gives each co_await's temporaries slots of their own, so a coroutine with a
// few timed reads or writes in different branches passes 1 KiB. Sending those to malloc cost an
// HTTP request about 400 instructions (a malloc and a free per read).
//
// With a producer and a consumer thread (a worker spawning tasks that another worker finishes:
// fork-join with work stealing) the consumer's lists fill up and the producer's run dry. A full
// list therefore hands its older half, a batch (32 blocks up to 1 KiB), to the class's transfer
// stack, and an empty list takes a batch from there before it asks operator new: blocks flow back
// from the consumer to the producer at the cost of one short lock per batch, instead of a malloc
// and a cross-thread free (which locks the allocating thread's arena) per block. A transfer stack
// holds at most 512 KiB of blocks; a batch beyond that goes back to operator delete. So the cache
// never holds more than about 3.4 MiB per thread (64 blocks of each class up to 1 KiB, 64 KiB of
// each above) plus 512 KiB per class.
//
// Accounting for the test invariant "no live coroutine frame": each thread counts its allocations
// and frees in two counters only it writes (relaxed atomics, so other threads may read them). The
// thread registers its counters on first use and folds them into `retired_live` when it exits.
#include <corio/detail/frame_alloc.hpp>
#include <corio/detail/wait_list.hpp>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>

namespace corio::detail {
namespace {

// Class c holds blocks of c * 16 + 8 bytes up to 1,032 (class 64), then 64 bytes more per class:
// glibc malloc hands out chunks in steps of 16 bytes with an 8-byte header, so a block of that
// size fills its chunk exactly. Rounding a request up to its class costs no larger chunk up to
// 1 KiB (a 200-byte frame stays in a 208-byte chunk) and at most 48 bytes more above.
constexpr std::size_t granule = 16;
constexpr std::size_t large_granule = 64;
constexpr std::size_t small_classes = 65;  // classes 0..64: blocks of 8..1,032 bytes
constexpr std::size_t small_limit = (small_classes - 1) * granule + 8;
constexpr std::size_t max_cached_size = 4096;
constexpr std::size_t class_count =
    small_classes + (max_cached_size - small_limit + large_granule - 1) / large_granule;
constexpr std::uint32_t max_per_class = 64;
// The classes above 1 KiB keep at most about this many bytes in a thread's list.
constexpr std::size_t max_large_list_bytes = 64 * 1024;

// The class of a request of 1 to small_limit bytes: one of the 16-byte classes.
constexpr std::size_t small_class_of(std::size_t size) noexcept {
  return (size + 7) / granule;
}
constexpr std::size_t class_of(std::size_t size) noexcept {
  return size <= small_limit
             ? small_class_of(size)
             : small_classes - 1 + (size - small_limit + large_granule - 1) / large_granule;
}
constexpr std::size_t class_block_size(std::size_t c) noexcept {
  return c < small_classes ? c * granule + 8
                           : small_limit + (c - (small_classes - 1)) * large_granule;
}
// How many blocks class c's thread list holds at most: 64, or an even count of about 64 KiB
// above 1 KiB (14 at 4 KiB). Half of it is the class's batch.
constexpr std::uint32_t class_cap(std::size_t c) noexcept {
  if (c < small_classes) return max_per_class;
  return static_cast<std::uint32_t>(max_large_list_bytes / class_block_size(c)) & ~1u;
}
constexpr std::uint32_t class_batch(std::size_t c) noexcept {
  return class_cap(c) / 2;
}
static_assert(class_block_size(class_of(max_cached_size)) >= max_cached_size);
static_assert(class_of(max_cached_size) == class_count - 1);
static_assert(class_of(small_limit) == small_classes - 1 &&
              class_of(small_limit + 1) == small_classes);
static_assert(class_cap(class_count - 1) == 14);

struct free_block {
  free_block* next;
};

// The bytes of blocks a class's transfer stack may hold; a batch beyond that goes back to
// operator delete.
constexpr std::size_t max_transfer_bytes = 512 * 1024;

// A batch on a transfer stack: its first block also links the next batch, in the word after
// its `next` (every class but the 8-byte class 0, which has no transfer stack, has room for it).
free_block* next_batch(const free_block* b) noexcept {
  free_block* n;
  std::memcpy(&n, reinterpret_cast<const char*>(b) + sizeof(free_block), sizeof n);
  return n;
}
void set_next_batch(free_block* b, free_block* n) noexcept {
  std::memcpy(reinterpret_cast<char*>(b) + sizeof(free_block), &n, sizeof n);
}

// One class's transfer stack: batches of exactly class_batch(c) blocks, each a null-terminated
// list. Guarded by `lock`, held for a few instructions (a push or a pop) by one thread per batch
// frees or allocations. The fork handlers hold every one across fork() so that the child gets
// consistent stacks and unlocked locks.
struct alignas(64) transfer_stack {
  spin_lock lock;
  // Written under the lock; atomic only for take_batch's peek without it (relaxed: a stale value
  // costs at most one needless lock, or one operator new while a batch just arrived).
  std::atomic<std::uint32_t> count{0};
  free_block* top = nullptr;  // the newest batch
};

// Constant-initialized with a trivial destructor, so accessing it needs no TLS guard; the
// non-trivial clean-up lives in cache_guard, constructed once per thread on registration.
struct thread_cache {
  free_block* lists[class_count] = {};
  std::uint32_t counts[class_count] = {};
  std::atomic<std::int64_t> allocated{0};  // owner-only writes; read by live_frames()
  std::atomic<std::int64_t> freed{0};
  std::int64_t heap_allocations = 0;  // owner-only: requests served by operator new
  thread_cache* prev = nullptr;       // registry links, guarded by registry_mutex
  thread_cache* next = nullptr;
  bool registered = false;
  bool dead = false;   // the thread is exiting: no more caching, count into retired_live directly
  bool ready = false;  // registered and not dead: what the fast paths test
};

// The most recently freed block of class c from the thread's list, or null.
free_block* pop_block(thread_cache& tc, std::size_t c) noexcept {
  free_block* b = tc.lists[c];
  if (b != nullptr) {
    tc.lists[c] = b->next;
    --tc.counts[c];
  }
  return b;
}
// Only where the list has room (below class_cap(c)).
void push_block(thread_cache& tc, std::size_t c, void* block) noexcept {
  auto* b = static_cast<free_block*>(block);
  b->next = tc.lists[c];
  tc.lists[c] = b;
  ++tc.counts[c];
}

constinit std::mutex registry_mutex;
constinit thread_cache* registry_head = nullptr;
constinit std::atomic<std::int64_t> retired_live{0};
constinit std::atomic<bool> recycling{true};
constinit transfer_stack transfer[class_count];

thread_local constinit thread_cache cache;

// Owner-only increment: a plain load and store (no locked instruction); relaxed because readers
// only need a value that was current at some point.
void bump(std::atomic<std::int64_t>& c) noexcept {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

struct cache_guard {
  ~cache_guard() {
    thread_cache& tc = cache;
    std::lock_guard lock(registry_mutex);
    retired_live.fetch_add(
        tc.allocated.load(std::memory_order_relaxed) - tc.freed.load(std::memory_order_relaxed),
        std::memory_order_relaxed);
    if (tc.prev) {
      tc.prev->next = tc.next;
    } else {
      registry_head = tc.next;
    }
    if (tc.next) tc.next->prev = tc.prev;
    for (std::size_t c = 0; c < class_count; ++c) {
      while (free_block* b = tc.lists[c]) {
        tc.lists[c] = b->next;
        ::operator delete(b);
      }
      tc.counts[c] = 0;
    }
    tc.dead = true;
    tc.ready = false;
  }
};
thread_local cache_guard guard;

void ensure_registered(thread_cache& tc) {
  if (tc.registered) return;
  tc.registered = true;
  tc.ready = !tc.dead;
  (void)&guard;  // odr-use: constructs the guard, whose destructor runs at thread exit
  std::lock_guard lock(registry_mutex);
  tc.next = registry_head;
  if (registry_head) registry_head->prev = &tc;
  registry_head = &tc;
}

// A batch from class c's transfer stack for an empty thread list; null if there is none.
[[gnu::noinline]] free_block* take_batch(std::size_t c) noexcept {
  transfer_stack& t = transfer[c];
  // A relaxed peek first: a producer whose stack is empty (no consumer on another thread) pays
  // no locked instruction per allocation that misses its list.
  if (t.count.load(std::memory_order_relaxed) == 0) return nullptr;
  t.lock.lock();
  free_block* b = t.top;
  if (b != nullptr) {
    t.top = next_batch(b);
    t.count.store(t.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  t.lock.unlock();
  return b;
}

// A full thread list (class_cap(c) blocks) keeps its newest half, which is warm in this thread's
// cache, and hands the older half to the transfer stack (or to operator delete if it is full).
[[gnu::noinline]] void give_batch(thread_cache& tc, std::size_t c) noexcept {
  const std::uint32_t keep = class_cap(c) - class_batch(c);
  free_block* last_kept = tc.lists[c];
  for (std::uint32_t i = 1; i < keep; ++i) last_kept = last_kept->next;
  free_block* batch = last_kept->next;
  last_kept->next = nullptr;
  tc.counts[c] = keep;
  if (c > 0) {  // class 0's 8-byte blocks have no room for set_next_batch's link
    transfer_stack& t = transfer[c];
    const std::size_t max_batches = max_transfer_bytes / (class_batch(c) * class_block_size(c));
    std::lock_guard g(t.lock);
    std::uint32_t n = t.count.load(std::memory_order_relaxed);
    if (n < max_batches) {
      set_next_batch(batch, t.top);
      t.top = batch;
      t.count.store(n + 1, std::memory_order_relaxed);
      return;
    }
  }
  while (batch != nullptr) {
    free_block* next = batch->next;
    ::operator delete(batch);
    batch = next;
  }
}

}  // namespace

void frame_transfer_lock_all() noexcept {
  for (transfer_stack& t : transfer) t.lock.lock();
}

void frame_transfer_unlock_all() noexcept {
  for (transfer_stack& t : transfer) t.lock.unlock();
}

namespace {

// Everything but the fast path below: the first allocation of a thread, an exiting thread,
// recycling off, a class above 1 KiB, an empty list.
[[gnu::noinline]] void* frame_alloc_slow(thread_cache& tc, std::size_t size) {
  // A cacheable request always gets its whole class size -- recycling or not, on a live thread or
  // an exiting one -- so that any block of a class may serve any request of it later, whichever
  // thread frees it and whichever way.
  const bool cacheable = size <= max_cached_size && size > 0;
  const std::size_t c = cacheable ? class_of(size) : 0;
  const std::size_t block_size = cacheable ? class_block_size(c) : size;
  if (tc.dead) [[unlikely]] {
    retired_live.fetch_add(1, std::memory_order_relaxed);
    return ::operator new(block_size);
  }
  ensure_registered(tc);
  bump(tc.allocated);
  if (cacheable && recycling.load(std::memory_order_relaxed)) {
    if (free_block* b = pop_block(tc, c)) return b;
    if (free_block* b = take_batch(c)) {
      tc.lists[c] = b->next;
      tc.counts[c] = class_batch(c) - 1;
      return b;
    }
  }
  ++tc.heap_allocations;
  return ::operator new(block_size);
}

// The fast paths' test: one flag of the thread (registered, not exiting), the recycling switch
// and a size of the 16-byte classes. Anything else goes through the slow paths, which do the
// same for those classes when they can.
bool fast_path(const thread_cache& tc, std::size_t size) noexcept {
  return size - 1 < small_limit && tc.ready && recycling.load(std::memory_order_relaxed);
}

}  // namespace

void* frame_alloc(std::size_t size) {
  thread_cache& tc = cache;
  if (fast_path(tc, size)) [[likely]] {
    if (free_block* b = pop_block(tc, small_class_of(size))) [[likely]] {
      bump(tc.allocated);
      return b;
    }
  }
  return frame_alloc_slow(tc, size);
}

std::int64_t frame_heap_allocations() noexcept {
  return cache.heap_allocations;
}

namespace {

[[gnu::noinline]] void frame_free_slow(thread_cache& tc, void* block, std::size_t size) noexcept {
  if (tc.dead) [[unlikely]] {
    retired_live.fetch_sub(1, std::memory_order_relaxed);
    ::operator delete(block);
    return;
  }
  ensure_registered(tc);
  bump(tc.freed);
  if (size <= max_cached_size && size > 0 && recycling.load(std::memory_order_relaxed)) {
    std::size_t c = class_of(size);
    if (tc.counts[c] == class_cap(c)) [[unlikely]] {
      give_batch(tc, c);
    }
    push_block(tc, c, block);
    return;
  }
  ::operator delete(block);
}

}  // namespace

void frame_free(void* block, std::size_t size) noexcept {
  thread_cache& tc = cache;
  if (fast_path(tc, size)) [[likely]] {
    const std::size_t c = small_class_of(size);
    if (tc.counts[c] != class_cap(c)) [[likely]] {
      push_block(tc, c, block);
      bump(tc.freed);
      return;
    }
  }
  frame_free_slow(tc, block, size);
}

std::int64_t live_frames() noexcept {
  std::lock_guard lock(registry_mutex);
  std::int64_t live = retired_live.load(std::memory_order_relaxed);
  for (thread_cache* tc = registry_head; tc; tc = tc->next) {
    live +=
        tc->allocated.load(std::memory_order_relaxed) - tc->freed.load(std::memory_order_relaxed);
  }
  return live;
}

void set_frame_recycling(bool on) noexcept {
  recycling.store(on, std::memory_order_relaxed);
}

}  // namespace corio::detail
