// The command line every corio sample shares: --port N, --workers N, --help, plus sample-specific
// options; and a clean exit on SIGINT/SIGTERM.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace samples {

struct option {
  std::string name;  // without the leading "--"
  std::string help;
  std::function<void(std::string_view)> set;  // called with the option's value
  char short_name = 0;                        // "-x" as well, when set
};

struct cli {
  unsigned port = 0;        // 0: any free port (printed once bound)
  std::size_t workers = 0;  // 0: one per CPU
};

/// The value of option `name` as a number in [0, max]; exits 2 with a message otherwise.
inline unsigned long number(std::string_view name, std::string_view v, unsigned long max) {
  char* end = nullptr;
  std::string s(v);
  unsigned long n = std::strtoul(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || *end != '\0' || n > max) {
    std::fprintf(stderr, "--%.*s: expected a number up to %lu, got '%s'\n",
                 static_cast<int>(name.size()), name.data(), max, s.c_str());
    std::exit(2);
  }
  return n;
}

/// --reads copy|pooled, shared by the servers that can read either way: sets `pooled` (true for
/// "pooled"); exits 2 with a message on anything else. `help` says which is the default.
inline option reads_option(bool& pooled, std::string help) {
  return {"reads", std::move(help), [&pooled](std::string_view v) {
            if (v != "pooled" && v != "copy") {
              std::fprintf(stderr, "--reads: expected pooled or copy, got '%.*s'\n",
                           static_cast<int>(v.size()), v.data());
              std::exit(2);
            }
            pooled = v == "pooled";
          }};
}

/// Parses argv; prints usage and exits 0 on --help, 2 on a bad or unknown option.
inline cli parse(int argc, char** argv, std::string_view what, std::vector<option> extra = {}) {
  cli c;
  extra.insert(
      extra.begin(),
      {{"port", "TCP port to listen on (0 = any free port, printed)",
        [&](std::string_view v) { c.port = static_cast<unsigned>(number("port", v, 65535)); }},
       {"workers", "worker threads (0 = one per CPU)",
        [&](std::string_view v) { c.workers = number("workers", v, 4096); }}});
  auto usage = [&](FILE* f) {
    std::fprintf(f, "%.*s\n\noptions:\n", static_cast<int>(what.size()), what.data());
    for (auto& o : extra) {
      char shorter[8] = "    ";
      if (o.short_name) std::snprintf(shorter, sizeof shorter, "-%c, ", o.short_name);
      std::fprintf(f, "  %s--%-12s V  %s\n", shorter, o.name.c_str(), o.help.c_str());
    }
    std::fprintf(f, "      --%-12s    %s\n", "help", "show this help");
    std::fprintf(f,
                 "\nenvironment:\n  CORIO_DUMP_ON_SIGQUIT=1  SIGQUIT (kill -QUIT PID) prints every "
                 "task and its backtrace to stderr\n");
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    }
    bool known = false;
    for (auto& o : extra) {
      std::string flag = "--" + o.name;
      std::string short_flag = o.short_name ? std::string{'-', o.short_name} : std::string();
      if ((a == flag || (!short_flag.empty() && a == short_flag)) && i + 1 < argc) {
        o.set(argv[++i]);
        known = true;
      } else if (a.size() > flag.size() && a.substr(0, flag.size() + 1) == flag + "=") {
        o.set(a.substr(flag.size() + 1));
        known = true;
      }
      if (known) break;
    }
    if (!known) {
      std::fprintf(stderr, "unknown or incomplete option '%s'\n\n", argv[i]);
      usage(stderr);
      std::exit(2);
    }
  }
  return c;
}

}  // namespace samples
