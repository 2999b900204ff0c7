#include "response.hpp"

#include "request.hpp"

#include <charconv>
#include <cstring>
#include <ctime>

namespace http {

std::string_view http_date() noexcept {
  // Per thread, so that no lock is needed; called from plain functions only, never across a
  // co_await (a coroutine may resume on another thread).
  thread_local std::time_t cached_second = -1;
  thread_local char text[32];
  thread_local std::size_t size = 0;
  timespec now{};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != cached_second) {
    cached_second = now.tv_sec;
    std::tm tm{};
    gmtime_r(&now.tv_sec, &tm);
    size = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  }
  return {text, size};
}

namespace {

// Writes pieces into space reserved at the end of a string: a head is built with one growth of
// the string instead of a capacity check and a copy call per piece.
class writer {
 public:
  explicit writer(char* at) noexcept : p_(at) {}
  writer& operator<<(std::string_view s) noexcept {
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());  // an empty view's data may be null
    p_ += s.size();
    return *this;
  }
  char* end() const noexcept { return p_; }

 private:
  char* p_;
};

constexpr std::string_view crlf = "\r\n";

}  // namespace

void append_head(std::string& out, const response_head& h) {
  // A status code has three digits (RFC 9110 15); a head built with any other number says 500.
  const int status = h.code >= 100 && h.code <= 999 ? h.code : 500;
  const char code[3] = {static_cast<char>('0' + status / 100),
                        static_cast<char>('0' + status / 10 % 10),
                        static_cast<char>('0' + status % 10)};
  char length[24];
  std::size_t length_size = 0;
  if (h.content_length)
    length_size = static_cast<std::size_t>(
        std::to_chars(length, length + sizeof length, *h.content_length).ptr - length);
  const std::string_view status_line = "HTTP/1.1 ";
  const std::string_view server_date = "\r\nServer: corio\r\nDate: ";
  const std::string_view type_field = "Content-Type: ";
  const std::string_view length_field = "Content-Length: ";
  const std::string_view close = "Connection: close\r\n";
  const std::string_view keep = "Connection: keep-alive\r\n";
  const std::string_view reason = reason_phrase(status);
  const std::string_view date = http_date();
  const std::string_view connection = !h.keep_alive ? close : h.http10 ? keep : std::string_view();

  std::size_t size = status_line.size() + 4 + reason.size() + server_date.size() + date.size() +
                     crlf.size() + connection.size() + h.extra.size() + crlf.size();
  if (!h.content_type.empty()) size += type_field.size() + h.content_type.size() + crlf.size();
  if (h.content_length) size += length_field.size() + length_size + crlf.size();

  const std::size_t at = out.size();
  out.resize(at + size);
  writer w(out.data() + at);
  w << status_line << std::string_view(code, 3) << " " << reason << server_date << date << crlf;
  if (!h.content_type.empty()) w << type_field << h.content_type << crlf;
  if (h.content_length) w << length_field << std::string_view(length, length_size) << crlf;
  w << connection << h.extra << crlf;
}

response_head head_for(const request& req, int code, std::string_view content_type,
                       std::uint64_t content_length) noexcept {
  response_head h;
  h.code = code;
  h.content_type = content_type;
  h.content_length = content_length;
  h.keep_alive = req.keep_alive;
  h.http10 = req.version_minor == 0;
  return h;
}

void append_response(std::string& out, const request& req, int code, std::string_view content_type,
                     std::string_view body, bool head_only, std::string_view extra) {
  response_head h = head_for(req, code, content_type, body.size());
  h.extra = extra;
  append_head(out, h);
  if (!head_only) out += body;
}

void append_error(std::string& out, int code) {
  std::string_view reason = reason_phrase(code);
  response_head h;
  h.code = code;
  h.content_type = "text/plain";
  h.content_length = reason.size();
  h.keep_alive = false;
  append_head(out, h);
  out += reason;
}

}  // namespace http
