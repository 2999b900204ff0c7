// The routes http::serve_connection answers from memory, and target parsing.
#include "server.hpp"

#include <algorithm>

namespace http {

std::string_view path_of(std::string_view target) noexcept {
  // absolute-form ("http://host:port/path"): the path starts at the first '/' after "://".
  if (std::size_t scheme = target.find("://");
      scheme != std::string_view::npos && target.find('/') > scheme) {
    std::size_t slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  return target.substr(0, target.find_first_of("?#"));
}

bool is_static_path(std::string_view path) noexcept {
  return path.starts_with("/static/");
}

std::string_view respond(std::string& out, const request& req, std::string_view path) {
  // Bodies above this are written from req.body directly instead of being copied into `out`.
  constexpr std::size_t copy_limit = 16 * 1024;
  bool head = req.method == "HEAD";
  auto refuse = [&](int code, std::string_view allow = {}) {
    append_response(out, req, code, "text/plain", reason_phrase(code), head, allow);
  };
  if (path == "/") {
    if (head || req.method == "GET") {
      append_response(out, req, 200, "text/plain", "Hello, World!", head);
    } else {
      refuse(405, "Allow: GET, HEAD\r\n");
    }
  } else if (path == "/echo") {
    if (req.method != "POST") {
      refuse(405, "Allow: POST\r\n");
      return {};
    }
    // The request's Content-Type comes back, unless it could inject a header line.
    std::string_view type = req.get("Content-Type");
    bool plain = std::none_of(type.begin(), type.end(), [](char c) {
      return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f;
    });
    if (type.empty() || !plain) type = "application/octet-stream";
    if (req.body.size() <= copy_limit) {
      append_response(out, req, 200, type, req.body);
      return {};
    }
    append_head(out, head_for(req, 200, type, req.body.size()));
    return req.body;
  } else {
    refuse(404);
  }
  return {};
}

}  // namespace http
