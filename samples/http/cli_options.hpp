// The command-line options http_server and https_server share (beyond --port and --workers).
#pragma once

#include "../common/cli.hpp"
#include "server.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace http {

/// --bind, --root, --header-timeout-ms (described by `head_timeout_help`) and --max-body,
/// writing into `bind`, `root` and `o`.
inline std::vector<samples::option> server_cli_options(std::string& bind, std::string& root,
                                                       server_options& o,
                                                       std::string head_timeout_help) {
  return {{"bind", "address to listen on (default 127.0.0.1)",
           [&bind](std::string_view v) { bind = std::string(v); }},
          {"root", "serve the files under DIR as GET /static/<path>",
           [&root](std::string_view v) { root = std::string(v); }},
          {"header-timeout-ms", std::move(head_timeout_help),
           [&o](std::string_view v) {
             o.request_limits.head_timeout =
                 std::chrono::milliseconds(samples::number("header-timeout-ms", v, 86'400'000));
           }},
          {"max-body", "largest request body in bytes (default 1048576)",
           [&o](std::string_view v) {
             o.request_limits.max_body_bytes = samples::number("max-body", v, 1ul << 40);
           }},
          samples::reads_option(
              o.request_limits.pooled_reads,
              "pooled (default: the worker's provided buffers, plain TCP only) or copy")};
}

}  // namespace http
