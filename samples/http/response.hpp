// Building HTTP/1.1 responses into a caller's std::string (one buffer per connection, reused:
// the responses of pipelined requests go out together in one write).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace http {

struct request;

/// The head of a response. Every head carries `Server: corio` and a `Date` (formatted at most
/// once a second per thread).
struct response_head {
  int code = 200;                 // 100-999 (a head with any other number is sent as 500)
  std::string_view content_type;  // no Content-Type header when empty
  std::optional<std::uint64_t> content_length;  // no Content-Length header when empty
  bool keep_alive = true;                       // false: "Connection: close"
  bool http10 = false;     // with keep_alive: "Connection: keep-alive" (HTTP/1.0 needs it)
  std::string_view extra;  // more header lines, each ending in "\r\n"
};

/// Appends the status line and headers, and the blank line that ends them.
void append_head(std::string& out, const response_head& h);

/// A head with `code`, `content_type` and `content_length`, keep-alive as `req` asks.
response_head head_for(const request& req, int code, std::string_view content_type,
                       std::uint64_t content_length) noexcept;

/// Appends a whole response with `body` (its head only when `head_only`, for HEAD requests),
/// keep-alive as `req` asks.
void append_response(std::string& out, const request& req, int code, std::string_view content_type,
                     std::string_view body, bool head_only = false, std::string_view extra = {});

/// Appends an error response (the reason phrase as text/plain) that closes the connection.
void append_error(std::string& out, int code);

/// The current time as an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT"), cached per thread and
/// refreshed at most once a second. The view is valid until the calling thread's next call.
std::string_view http_date() noexcept;

}  // namespace http
