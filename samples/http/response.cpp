#include "response.hpp"

#include "request.hpp"

#include <charconv>
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

void append_number(std::string& out, std::uint64_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, end);
}

}  // namespace

void append_head(std::string& out, const response_head& h) {
  out += "HTTP/1.1 ";
  append_number(out, static_cast<std::uint64_t>(h.code));
  out += ' ';
  out += reason_phrase(h.code);
  out += "\r\nServer: corio\r\nDate: ";
  out += http_date();
  out += "\r\n";
  if (!h.content_type.empty()) {
    out += "Content-Type: ";
    out += h.content_type;
    out += "\r\n";
  }
  if (h.content_length) {
    out += "Content-Length: ";
    append_number(out, *h.content_length);
    out += "\r\n";
  }
  if (!h.keep_alive) {
    out += "Connection: close\r\n";
  } else if (h.http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += h.extra;
  out += "\r\n";
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
