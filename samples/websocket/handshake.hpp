// The opening handshake's key check (RFC 6455 4.2): the client's Sec-WebSocket-Key and the
// server's Sec-WebSocket-Accept.
#pragma once

#include <string>
#include <string_view>

namespace ws {

/// A valid Sec-WebSocket-Key: base64 of exactly 16 bytes.
bool valid_client_key(std::string_view key);

/// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string accept_key(std::string_view key);

}  // namespace ws
