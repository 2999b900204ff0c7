// The provided-buffer ring of one worker; ownership rules in buffer_pool.hpp.
#include "buffer_pool.hpp"

#include "context.hpp"
#include "ring.hpp"
#include "worker.hpp"

#include <corio/detail/pooled_read.hpp>
#include <corio/pooled_buffer.hpp>

#include <fmt/format.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace corio::detail {

namespace {

constinit std::atomic<std::int64_t> live_pools{0};

void* map_anonymous(std::size_t bytes, const char* what, std::size_t count) {
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    int err = errno;
    throw_ring_error(err, fmt::format("corio: cannot map the {} of a read pool of {} buffers "
                                      "({} bytes)",
                                      what, count, bytes));
  }
  return m;
}

}  // namespace

buffer_pool::buffer_pool(worker& owner, ring& r, unsigned count, std::size_t size, unsigned group)
    : owner_(&owner), ring_(r), size_(size), count_(count), group_(group) {
  live_pools.fetch_add(1, std::memory_order_relaxed);
  if (count == 0) return;  // heap buffers only
  long page = ::sysconf(_SC_PAGESIZE);
  ring_bytes_ = (count * sizeof(io_uring_buf) + static_cast<std::size_t>(page) - 1) /
                static_cast<std::size_t>(page) * static_cast<std::size_t>(page);
  base_bytes_ = count * size;
  next_ = std::make_unique<std::uint32_t[]>(count);
  lens_ = std::make_unique<std::uint32_t[]>(count);
  try {
    br_ = static_cast<io_uring_buf_ring*>(map_anonymous(ring_bytes_, "ring", count));
    try {
      base_ = static_cast<std::byte*>(map_anonymous(base_bytes_, "buffers", count));
    } catch (...) {
      ::munmap(br_, ring_bytes_);
      throw;
    }
  } catch (...) {
    live_pools.fetch_sub(1, std::memory_order_relaxed);
    throw;
  }
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
  reg.ring_entries = count;
  reg.bgid = static_cast<std::uint16_t>(group);
  if (int rc = r.register_buf_ring(reg); rc < 0) {
    ::munmap(base_, base_bytes_);
    ::munmap(br_, ring_bytes_);
    live_pools.fetch_sub(1, std::memory_order_relaxed);
    throw_ring_error(-rc, fmt::format("corio: cannot register a read pool of {} buffers of {} "
                                      "bytes (IORING_REGISTER_PBUF_RING)",
                                      count, size));
  }
  int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, address(static_cast<std::uint16_t>(i)), static_cast<unsigned>(size),
                          static_cast<unsigned short>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));  // release: the entries first
  available_ = count;
}

buffer_pool::~buffer_pool() {
  if (base_ != nullptr) ::munmap(base_, base_bytes_);
  live_pools.fetch_sub(1, std::memory_order_relaxed);
}

std::int64_t buffer_pool::live_count() noexcept {
  return live_pools.load(std::memory_order_relaxed);
}

bool buffer_pool::owned_here() const noexcept {
  return current_worker() == owner_ && !retired_.load(std::memory_order_relaxed);
}

void buffer_pool::recycle(std::uint16_t bid) noexcept {
  io_uring_buf_ring_add(br_, address(bid), static_cast<unsigned>(size_), bid,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);  // a release store of the tail: the entry first
  ++available_;
  note_level();
}

void buffer_pool::note_level() noexcept {
  owner_->note_pool_out(count_ - available_);
}

void buffer_pool::drain_returns_slow() noexcept {
  // Acquire: the pushers' writes of next_[] (and their use of the buffers) happen before.
  std::uint32_t top = returns_.exchange(empty_stack, std::memory_order_acquire);
  while (top != empty_stack) {
    auto bid = static_cast<std::uint16_t>(top - 1);
    top = next_[bid];
    recycle(bid);
  }
}

void buffer_pool::give_back(std::uint16_t bid) noexcept {
  if (owned_here()) {
    recycle(bid);
    return;
  }
  std::uint32_t top = returns_.load(std::memory_order_relaxed);
  for (;;) {
    if (top == retired_stack) {
      // acq_rel: the last one to count off frees, after every other user's accesses.
      if (orphans_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
      return;
    }
    next_[bid] = top;
    if (returns_.compare_exchange_weak(top, std::uint32_t{bid} + 1u, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return;
    }
  }
}

void buffer_pool::retire() noexcept {
  retired_.store(true, std::memory_order_release);  // pairs: acquire in retired()
  if (br_ != nullptr) {
    (void)ring_.unregister_buf_ring(group_);
    ::munmap(br_, ring_bytes_);
    br_ = nullptr;
  }
  // What was pushed so far is back; later pushers see retired_stack and count off instead.
  std::uint32_t top = returns_.exchange(retired_stack, std::memory_order_acquire);
  unsigned back = available_;
  while (top != empty_stack) {
    ++back;
    top = next_[top - 1];
  }
  auto out = static_cast<std::int64_t>(count_ - back) + readers_;
  // acq_rel, and the result: late give_backs may already have counted off (orphans_ < 0).
  if (orphans_.fetch_add(out, std::memory_order_acq_rel) + out == 0) delete this;
}

void buffer_pool::unbind_reader() noexcept {
  if (owned_here()) {
    --readers_;
    return;
  }
  // Only after retirement (a live pool's readers are unbound on its owner): count off.
  if (orphans_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

std::int64_t live_read_pools() noexcept {
  return buffer_pool::live_count();
}

void return_pooled(buffer_pool* pool, std::uint16_t bid) noexcept {
  pool->give_back(bid);
}

}  // namespace corio::detail
