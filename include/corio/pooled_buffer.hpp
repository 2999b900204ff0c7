// corio::pooled_buffer: bytes received into a buffer of the runtime's read pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string_view>
#include <utility>

namespace corio {

namespace detail {
class buffer_pool;
/// Gives buffer `bid` back to `pool` (any thread; see buffer_pool.hpp).
void return_pooled(buffer_pool* pool, std::uint16_t bid) noexcept;
}  // namespace detail

/// The bytes one `read_some_pooled()` received (stream_base.hpp), in a buffer the caller owns
/// until this object goes away. The buffer comes from the read pool of the worker whose ring
/// received the bytes (a ring of provided buffers the kernel fills, IORING_REGISTER_PBUF_RING), or,
/// when that pool had none left, from the heap. Destroying it (on any thread, also after the
/// runtime's session ended) gives the buffer back. Move-only. Empty at the end of the stream.
///
/// Hold it only as long as needed: while every buffer of a pool is held, reads on that worker
/// fall back to heap buffers (slower, never stalled).
class pooled_buffer {
 public:
  pooled_buffer() noexcept = default;
  /// Takes over `o`'s buffer; `o` becomes empty.
  pooled_buffer(pooled_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        pool_(std::exchange(o.pool_, nullptr)),
        bid_(o.bid_) {}
  /// Gives this object's buffer back, then takes over `o`'s; `o` becomes empty.
  pooled_buffer& operator=(pooled_buffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      pool_ = std::exchange(o.pool_, nullptr);
      bid_ = o.bid_;
    }
    return *this;
  }
  pooled_buffer(const pooled_buffer&) = delete;
  pooled_buffer& operator=(const pooled_buffer&) = delete;
  ~pooled_buffer() { reset(); }

  /// The bytes received; writable, so a parser may work in place.
  std::byte* data() const noexcept { return data_; }
  /// The number of bytes received (0: the end of the stream, or a moved-from object).
  std::size_t size() const noexcept { return size_; }
  /// No bytes: size() == 0.
  bool empty() const noexcept { return size_ == 0; }
  /// The bytes as a span (for write_all and friends).
  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  /// The bytes as characters.
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(data_), size_}; }
  /// Whether the bytes sit in a buffer of the ring's pool (false: a heap buffer, after the pool
  /// ran dry, or nothing).
  bool from_pool() const noexcept { return pool_ != nullptr; }

  /// Gives the buffer back now; the object becomes empty.
  void reset() noexcept {
    if (pool_ != nullptr) {
      detail::return_pooled(std::exchange(pool_, nullptr), bid_);
    } else if (data_ != nullptr) {
      ::operator delete(data_);
    }
    data_ = nullptr;
    size_ = 0;
  }

  /// Library use: adopts buffer `bid` of `pool` (null pool: a block from operator new).
  static pooled_buffer adopt(detail::buffer_pool* pool, std::uint16_t bid, std::byte* data,
                             std::size_t size) noexcept {
    pooled_buffer b;
    b.data_ = data;
    b.size_ = size;
    b.pool_ = pool;
    b.bid_ = bid;
    return b;
  }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  detail::buffer_pool* pool_ = nullptr;
  std::uint16_t bid_ = 0;
};

}  // namespace corio
