#include "request.hpp"

#include "text.hpp"

#include <utility>

namespace http {

std::string_view request::get(std::string_view name) const {
  for (const header& h : headers)
    if (iequals(h.name, name)) return h.value;
  return {};
}

bool request::has_token(std::string_view name, std::string_view token) const {
  for (const header& h : headers) {
    if (!iequals(h.name, name)) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      std::size_t comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

void request::clear() noexcept {
  method = {};
  target.clear();
  version_major = 1;
  version_minor = 1;
  headers.clear();
  body.clear();
  keep_alive = true;
  upgrade = false;
}

void swap(request& a, request& b) noexcept {
  std::swap(a.method, b.method);
  a.target.swap(b.target);
  std::swap(a.version_major, b.version_major);
  std::swap(a.version_minor, b.version_minor);
  a.headers.swap(b.headers);
  a.body.swap(b.body);
  std::swap(a.keep_alive, b.keep_alive);
  std::swap(a.upgrade, b.upgrade);
}

int status_code(status s) noexcept {
  switch (s) {
    case status::ok:
    case status::closed:
      return 0;
    case status::bad_request:
      return 400;
    case status::payload_too_large:
      return 413;
    case status::header_fields_too_large:
      return 431;
    case status::request_timeout:
      return 408;
    case status::not_implemented:
      return 501;
  }
  return 500;
}

std::string_view reason_phrase(int code) noexcept {
  switch (code) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace http
