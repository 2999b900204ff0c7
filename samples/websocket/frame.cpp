#include "frame.hpp"

#include <cstring>

namespace ws {

parse_status parse_header(std::span<const std::byte> data, frame_header& h, std::size_t& used) {
  if (data.size() < 2) return parse_status::need_more;
  auto b0 = static_cast<std::uint8_t>(data[0]), b1 = static_cast<std::uint8_t>(data[1]);
  h.fin = (b0 & 0x80) != 0;
  h.rsv = (b0 >> 4) & 0x7;
  h.opcode = b0 & 0x0F;
  h.masked = (b1 & 0x80) != 0;
  std::uint64_t len = b1 & 0x7F;
  std::size_t pos = 2;
  if (len == 126) {
    if (data.size() < 4) return parse_status::need_more;
    len = (std::uint64_t{static_cast<std::uint8_t>(data[2])} << 8) |
          static_cast<std::uint8_t>(data[3]);
    pos = 4;
    if (len < 126) return parse_status::bad_length;
  } else if (len == 127) {
    if (data.size() < 10) return parse_status::need_more;
    len = 0;
    for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | static_cast<std::uint8_t>(data[i]);
    pos = 10;
    if (len < 65536 || (len >> 63) != 0) return parse_status::bad_length;
  }
  if (h.masked) {
    if (data.size() < pos + 4) return parse_status::need_more;
    std::memcpy(h.mask.data(), data.data() + pos, 4);
    pos += 4;
  }
  h.length = len;
  used = pos;
  return parse_status::ok;
}

std::size_t write_header(std::array<std::byte, 10>& out, bool fin, std::uint8_t opcode,
                         std::uint64_t length) noexcept {
  out[0] = static_cast<std::byte>((fin ? 0x80 : 0) | (opcode & 0x0F));
  if (length < 126) {
    out[1] = static_cast<std::byte>(length);
    return 2;
  }
  if (length <= 0xFFFF) {
    out[1] = std::byte{126};
    out[2] = static_cast<std::byte>(length >> 8);
    out[3] = static_cast<std::byte>(length);
    return 4;
  }
  out[1] = std::byte{127};
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::byte>(length >> (56 - 8 * i));
  return 10;
}

void unmask(std::span<std::byte> data, const std::array<std::byte, 4>& mask,
            std::uint64_t offset) noexcept {
  // The mask rotated so that key[0] applies to data[0]; then 8 bytes at a time.
  std::array<std::byte, 8> key;
  for (std::size_t i = 0; i < 8; ++i) key[i] = mask[(offset + i) % 4];
  std::uint64_t k;
  std::memcpy(&k, key.data(), 8);
  std::size_t i = 0, n = data.size();
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    w ^= k;
    std::memcpy(data.data() + i, &w, 8);
  }
  for (; i < n; ++i) data[i] ^= key[i % 8];
}

bool valid_close_code(unsigned code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace ws
