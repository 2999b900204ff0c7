// Guard buffers: memory that the kernel cannot write into once released. ASan cannot see kernel
// writes, so a ring operation that outlived the frame owning its buffer would corrupt freed memory
// silently; with a guard buffer it writes into PROT_NONE pages instead, which the kernel reports as
// EFAULT to the (stale) operation and which never hold anyone else's data.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <span>
#include <stdexcept>
#include <system_error>

namespace corio::test {

class guard_buffer {
 public:
  /// `size` bytes, rounded up to whole pages, mapped read-write.
  explicit guard_buffer(std::size_t size) {
    std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    len_ = (size + page - 1) / page * page;
    void* p = ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
    base_ = static_cast<std::byte*>(p);
    size_ = size;
  }
  guard_buffer(const guard_buffer&) = delete;
  guard_buffer& operator=(const guard_buffer&) = delete;
  /// The mapping goes only here; a released buffer stays inaccessible until then.
  ~guard_buffer() { ::munmap(base_, len_); }

  std::span<std::byte> bytes() noexcept { return {base_, size_}; }
  /// No access from now on, for the process and the kernel alike.
  void release() {
    if (::mprotect(base_, len_, PROT_NONE) != 0) {
      throw std::system_error(errno, std::generic_category(), "mprotect");
    }
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t len_ = 0;
  std::size_t size_ = 0;
};

}  // namespace corio::test
