// Piece sizes for feeding a fuzz input in arbitrary splits, chosen by a few bytes of the input
// (so that libFuzzer mutates the split together with the data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fuzz {

// The same seed always gives the same sequence. Mostly short pieces (1 to 16 bytes: states that
// span a boundary are the interesting ones), sometimes a long one (up to 512 bytes), sometimes
// a single byte.
class splitter {
 public:
  explicit splitter(std::uint32_t seed) noexcept : x_(seed * 2654435761u + 0x9E3779B9u) {
    if (x_ == 0) x_ = 1;
  }
  std::size_t next() noexcept {
    std::uint32_t r = step();
    switch (r % 8) {
      case 0:
        return 1;
      case 1:
        return 1 + (r >> 8) % 512;
      default:
        return 1 + (r >> 8) % 16;
    }
  }

 private:
  std::uint32_t step() noexcept {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 17;
    x_ ^= x_ << 5;
    return x_;
  }
  std::uint32_t x_;
};

/// Takes `n` leading bytes of `in` as a little-endian number (fewer if `in` is shorter).
inline std::uint32_t take_u32(std::string_view& in, std::size_t n) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < n && !in.empty(); ++i) {
    v |= std::uint32_t{static_cast<unsigned char>(in.front())} << (8 * i);
    in.remove_prefix(1);
  }
  return v;
}

}  // namespace fuzz
