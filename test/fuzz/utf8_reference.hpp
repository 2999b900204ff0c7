// A reference for ws::utf8_validator, built differently: from the code points a prefix can
// still become, rather than from per-lead-byte ranges of the next byte.
//
// viable[e]: bytes [0, e) are a prefix of some strict UTF-8 (RFC 3629) string.
// complete[e]: they are strict UTF-8 themselves (viable, not inside a character).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace fuzz {

struct utf8_reference {
  std::vector<bool> viable, complete;

  explicit utf8_reference(std::span<const std::byte> s)
      : viable(s.size() + 1, false), complete(s.size() + 1, false) {
    viable[0] = complete[0] = true;
    std::size_t i = 0;
    while (i < s.size()) {
      auto lead = static_cast<std::uint8_t>(s[i]);
      int ones = 0;
      while (ones < 8 && (lead & (0x80 >> ones)) != 0) ++ones;
      if (ones == 1 || ones > 4) return;  // a continuation byte or no UTF-8 lead at all
      const int len = ones == 0 ? 1 : ones;
      std::uint32_t cp = lead & (0xFFu >> (len == 1 ? 1 : len + 1));
      for (int k = 1;; ++k) {
        // `k` bytes of a `len`-byte character seen: it is one of [lo, hi].
        std::uint32_t lo = cp << (6 * (len - k)), hi = lo | ((1u << (6 * (len - k))) - 1);
        if (!reachable(len, lo, hi)) return;
        viable[i + k] = true;
        if (k == len) {
          complete[i + k] = true;
          break;
        }
        if (i + k == s.size()) return;
        auto c = static_cast<std::uint8_t>(s[i + k]);
        if ((c & 0xC0) != 0x80) return;
        cp = (cp << 6) | (c & 0x3F);
      }
      i += static_cast<std::size_t>(len);
    }
  }

  // Some code point in [lo, hi] is encoded in exactly `len` bytes (the shortest form) and is a
  // scalar value (no surrogate, at most U+10FFFF).
  static bool reachable(int len, std::uint32_t lo, std::uint32_t hi) {
    static constexpr std::uint32_t first[] = {0, 0x0, 0x80, 0x800, 0x10000};
    static constexpr std::uint32_t last[] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    auto overlaps = [&](std::uint32_t a, std::uint32_t b) {
      return std::max(a, lo) <= std::min(b, hi);
    };
    std::uint32_t a = first[len], b = last[len];
    if (len == 3) return overlaps(a, 0xD7FF) || overlaps(0xE000, b);
    return overlaps(a, b);
  }
};

}  // namespace fuzz
