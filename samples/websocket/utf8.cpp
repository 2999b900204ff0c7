#include "utf8.hpp"

namespace ws {

bool utf8_validator::feed(std::span<const std::byte> bytes) noexcept {
  if (bad_) return false;
  for (std::byte byte : bytes) {
    auto b = static_cast<std::uint8_t>(byte);
    if (need_ > 0) {
      if (b < lo_ || b > hi_) return !(bad_ = true);
      --need_;
      lo_ = 0x80;
      hi_ = 0xBF;
      continue;
    }
    if (b < 0x80) continue;
    if (b >= 0xC2 && b <= 0xDF) {
      need_ = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need_ = 2;
      if (b == 0xE0) lo_ = 0xA0;  // overlong below U+0800
      if (b == 0xED) hi_ = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      need_ = 3;
      if (b == 0xF0) lo_ = 0x90;  // overlong below U+10000
      if (b == 0xF4) hi_ = 0x8F;  // above U+10FFFF
    } else {
      return !(bad_ = true);  // a stray continuation byte, C0, C1 or F5-FF
    }
  }
  return true;
}

}  // namespace ws
