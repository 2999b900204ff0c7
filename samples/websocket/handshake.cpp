#include "handshake.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace ws {

bool valid_client_key(std::string_view key) {
  // 16 bytes are 22 base64 characters and "==".
  if (key.size() != 24 || key.substr(22) != "==") return false;
  std::array<unsigned char, 18> out;
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(key.data()), 24);
  return n == 18;  // EVP_DecodeBlock counts the padding as data: 18 means 16 + "=="
}

std::string accept_key(std::string_view key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += guid;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned len = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &len, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 failed");
  }
  std::array<unsigned char, 32> b64{};  // 20 bytes -> 28 characters and a NUL
  int n = EVP_EncodeBlock(b64.data(), digest.data(), static_cast<int>(len));
  return std::string(reinterpret_cast<const char*>(b64.data()), static_cast<std::size_t>(n));
}

}  // namespace ws
