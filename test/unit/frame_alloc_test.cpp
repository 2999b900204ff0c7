// frame_alloc: the per-thread recycling of coroutine frames and task headers.
// Invariant: a recycled block is at least as large as every request of its size class, however
// the block was allocated (recycling on or off) and however it was freed. ASan reports the write
// past a block that is too small.
#include <doctest/doctest.h>

#include <corio/detail/frame_alloc.hpp>

#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

namespace {

// `n` blocks of `size` bytes allocated on a thread of their own (with empty per-thread lists),
// and how many of them came from operator new.
struct allocated {
  std::vector<void*> blocks;
  long from_heap = 0;
};
allocated allocate_on_new_thread(std::size_t n, std::size_t size) {
  allocated a;
  a.blocks.reserve(n);
  std::thread([&] {
    auto before = corio::detail::frame_heap_allocations();
    for (std::size_t i = 0; i < n; ++i) a.blocks.push_back(corio::detail::frame_alloc(size));
    a.from_heap = static_cast<long>(corio::detail::frame_heap_allocations() - before);
  }).join();
  return a;
}
void free_on_new_thread(const std::vector<void*>& blocks, std::size_t size) {
  std::thread([&] {
    for (void* b : blocks) corio::detail::frame_free(b, size);
  }).join();
}

// Restores recycling (the default, on) however the test ends.
struct recycling_off {
  recycling_off() { corio::detail::set_frame_recycling(false); }
  ~recycling_off() { corio::detail::set_frame_recycling(true); }
  recycling_off(const recycling_off&) = delete;
  recycling_off& operator=(const recycling_off&) = delete;
};

}  // namespace

TEST_SUITE("frame_alloc") {
  TEST_CASE("a block allocated without recycling serves any request of its class once recycled") {
    const auto live = corio::detail::live_frames();
    // Every size up to the cache's limit and a little beyond, each allocated small and then
    // requested again at each larger size until the block is no longer handed back.
    for (std::size_t small = 1; small <= 4200; ++small) {
      void* block = nullptr;
      {
        recycling_off off;
        block = corio::detail::frame_alloc(small);
      }
      corio::detail::frame_free(block, small);  // recycling on: may go to this thread's cache
      for (std::size_t size = small; size <= small + 48; ++size) {
        void* again = corio::detail::frame_alloc(size);
        std::memset(again, 0xa5, size);  // the whole request must be usable
        corio::detail::frame_free(again, size);
      }
    }
    CHECK(corio::detail::live_frames() == live);
  }

  TEST_CASE("blocks of one class are recycled most recently freed first") {
    std::vector<void*> blocks;
    for (int i = 0; i < 8; ++i) blocks.push_back(corio::detail::frame_alloc(200));
    for (void* b : blocks) corio::detail::frame_free(b, 200);
    // 193..200 bytes are one class: the last block freed comes back for any of them.
    void* again = corio::detail::frame_alloc(193);
    CHECK(again == blocks.back());
    corio::detail::frame_free(again, 193);
  }

  // Above 1 KiB the classes step by 64 bytes up to 4 KiB (frames with a few timed io awaiters
  // land there); beyond, every request goes to operator new.
  TEST_CASE("frames up to 4 KiB are recycled, larger ones are not") {
    const auto live = corio::detail::live_frames();
    for (std::size_t size : {1025u, 1264u, 2000u, 4096u}) {
      void* first = corio::detail::frame_alloc(size);
      corio::detail::frame_free(first, size);
      const auto before = corio::detail::frame_heap_allocations();
      void* again = corio::detail::frame_alloc(size);
      CHECK(corio::detail::frame_heap_allocations() == before);
      CHECK(again == first);
      corio::detail::frame_free(again, size);
    }
    void* big = corio::detail::frame_alloc(4097);
    corio::detail::frame_free(big, 4097);
    const auto before = corio::detail::frame_heap_allocations();
    big = corio::detail::frame_alloc(4097);
    CHECK(corio::detail::frame_heap_allocations() == before + 1);
    corio::detail::frame_free(big, 4097);
    CHECK(corio::detail::live_frames() == live);
  }

  // A worker that spawns tasks which another worker finishes (fork-join under work stealing):
  // without the transfer stacks every allocation on the first would go to operator new and every
  // free on the second to operator delete.
  TEST_CASE("blocks freed on one thread serve another thread's allocations, up to a bound") {
    const auto live = corio::detail::live_frames();
    constexpr std::size_t size = 680;  // a class no other test uses: its transfer stack is empty
    allocated first = allocate_on_new_thread(512, size);
    CHECK(first.from_heap == 512);
    free_on_new_thread(first.blocks, size);
    // The freeing thread kept at most 64 and passed the rest on in batches of 32 (its lists went
    // with it when it exited): a new thread gets 256 blocks without operator new.
    allocated second = allocate_on_new_thread(256, size);
    CHECK(second.from_heap == 0);
    free_on_new_thread(second.blocks, size);

    // The stacks hold at most 512 KiB per class: of 4,096 blocks freed (2.8 MiB), most went back
    // to operator delete, and a new thread's 4,096 allocations mostly come from the heap again.
    constexpr std::size_t big = 900;  // 904-byte blocks: 18 batches of 32 fit
    allocated many = allocate_on_new_thread(4096, big);
    free_on_new_thread(many.blocks, big);
    allocated again = allocate_on_new_thread(4096, big);
    CHECK(again.from_heap >= 4096 - static_cast<long>(512 * 1024 / 904));
    CHECK(again.from_heap < 4096);
    free_on_new_thread(again.blocks, big);
    CHECK(corio::detail::live_frames() == live);
  }

  // Above 1 KiB a thread list holds about 64 KiB (20 blocks of 3,080 bytes) and the batches are
  // half of that: the same flow, with the smaller lists.
  TEST_CASE("large blocks freed on one thread serve another thread's allocations") {
    const auto live = corio::detail::live_frames();
    constexpr std::size_t size = 3070;  // a 3,080-byte class
    {
      // The first test case's frees passed batches of this class on: a thread takes them all
      // (the stack holds at most 170 blocks), and they go back to operator delete.
      allocated drain = allocate_on_new_thread(200, size);
      recycling_off off;
      for (void* b : drain.blocks) corio::detail::frame_free(b, size);
    }
    allocated first = allocate_on_new_thread(200, size);
    CHECK(first.from_heap == 200);
    free_on_new_thread(first.blocks, size);
    // Kept: 20 in the list (gone with the thread); passed on: 18 batches of 10, of which the
    // transfer stack's 512 KiB bound keeps 17. The next thread gets those 170 blocks, no more.
    allocated second = allocate_on_new_thread(170, size);
    CHECK(second.from_heap == 0);
    allocated third = allocate_on_new_thread(10, size);
    CHECK(third.from_heap == 10);
    free_on_new_thread(second.blocks, size);
    free_on_new_thread(third.blocks, size);
    CHECK(corio::detail::live_frames() == live);
  }
}
