// Prelude "guide": what docs/guide.md's fragments use without declaring it. They are compiled,
// not linked, so declarations suffice.
#pragma once

#include "prelude/corio.hpp"

extern corio::net::tcp_stream accepted;
extern corio::net::tcp_stream tcp;
extern std::array<std::byte, 4096> buf;
