// frame_alloc: the per-thread recycling of coroutine frames and task headers.
// Invariant: a recycled block is at least as large as every request of its size class, however
// the block was allocated (recycling on or off) and however it was freed. ASan reports the write
// past a block that is too small.
#include <doctest/doctest.h>

#include <corio/detail/frame_alloc.hpp>

#include <cstddef>
#include <cstring>
#include <vector>

namespace {

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
    for (std::size_t small = 1; small <= 1100; ++small) {
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
}
