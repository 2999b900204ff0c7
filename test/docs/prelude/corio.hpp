// Prelude "corio" for documentation snippets (test/docs/snippets.py): the whole API, fmt, the
// standard headers the examples use, and the chrono literals (100ms, 2s).
#pragma once

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
