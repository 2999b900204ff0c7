// RFC 6455 frame headers: parsing a client's, writing a server's, and unmasking payloads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace ws {

enum opcode : std::uint8_t {
  op_continuation = 0x0,
  op_text = 0x1,
  op_binary = 0x2,
  op_close = 0x8,
  op_ping = 0x9,
  op_pong = 0xA,
};

/// Close status codes the server sends.
enum close_code : std::uint16_t {
  close_normal = 1000,
  close_protocol_error = 1002,
  close_invalid_data = 1007,
  close_too_big = 1009,
};

struct frame_header {
  bool fin = false;
  std::uint8_t rsv = 0;  // the three reserved bits (no extension is negotiated: must be 0)
  std::uint8_t opcode = 0;
  bool masked = false;
  std::uint64_t length = 0;
  std::array<std::byte, 4> mask{};
};

enum class parse_status {
  ok,
  need_more,   // the header is not complete yet
  bad_length,  // a length in more bytes than needed, or with the 64-bit form's top bit set
};

/// Parses the frame header at the start of `data`; on ok, `used` is its size (2 to 14 bytes).
/// Non-minimal lengths (126 announcing < 126 bytes, 127 announcing < 65536) are refused: RFC
/// 6455 5.2 requires the minimal form.
parse_status parse_header(std::span<const std::byte> data, frame_header& h, std::size_t& used);

/// Writes an unmasked server frame header for `length` bytes into `out`; returns its size.
std::size_t write_header(std::array<std::byte, 10>& out, bool fin, std::uint8_t opcode,
                         std::uint64_t length) noexcept;

/// XORs `data` with `mask`, where data[0] is byte `offset` of the frame's payload.
void unmask(std::span<std::byte> data, const std::array<std::byte, 4>& mask,
            std::uint64_t offset) noexcept;

/// Whether `code` may appear in a close frame (RFC 6455 7.4: 1000-1003, 1007-1014, 3000-4999).
bool valid_close_code(unsigned code) noexcept;

inline bool is_control(std::uint8_t op) noexcept {
  return (op & 0x8) != 0;
}
inline bool is_known(std::uint8_t op) noexcept {
  return op <= op_binary || (op >= op_close && op <= op_pong);
}

}  // namespace ws
