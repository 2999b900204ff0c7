// An incremental UTF-8 validator: a text message may be split across frames anywhere, even
// inside a character.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ws {

/// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800-DFFF), nothing above
/// U+10FFFF. Feed the bytes in order; `complete()` at the end of the message.
class utf8_validator {
 public:
  /// False once the bytes so far cannot be the start of valid UTF-8 (and from then on).
  bool feed(std::span<const std::byte> bytes) noexcept;
  /// The bytes so far are valid and do not end inside a character.
  bool complete() const noexcept { return !bad_ && need_ == 0; }
  void reset() noexcept { *this = utf8_validator(); }

 private:
  int need_ = 0;  // continuation bytes still expected for the current character
  // The range of the next continuation byte: narrower than 80-BF right after E0, ED, F0, F4.
  std::uint8_t lo_ = 0x80, hi_ = 0xBF;
  bool bad_ = false;
};

}  // namespace ws
