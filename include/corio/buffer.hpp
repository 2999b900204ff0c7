// Byte views for I/O.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace corio {

/// The bytes of a string, without a terminating NUL: `write_all(corio::as_bytes("hello"))`.
inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

/// The bytes of any contiguous range of trivially copyable values.
template <class T, std::size_t N>
std::span<const std::byte> as_bytes(std::span<T, N> s) noexcept {
  return std::as_bytes(s);
}

/// Writable bytes of a string (for reading into it): `read(corio::as_writable_bytes(s))`.
inline std::span<std::byte> as_writable_bytes(std::string& s) noexcept {
  return {reinterpret_cast<std::byte*>(s.data()), s.size()};
}
/// Writable bytes of any contiguous range of trivially copyable values (std::as_writable_bytes).
template <class T, std::size_t N>
std::span<std::byte> as_writable_bytes(std::span<T, N> s) noexcept {
  return std::as_writable_bytes(s);
}

/// A string_view of bytes (for printing what was read).
inline std::string_view as_string_view(std::span<const std::byte> b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace corio
