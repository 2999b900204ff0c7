// Prelude "readme": what README.md's fragments use without declaring it. They are compiled, not
// linked, so declarations suffice.
#pragma once

#include "prelude/corio.hpp"

struct shared_state_t {
  int hits = 0;
};
extern shared_state_t shared_state;
corio::task<> child(int i, shared_state_t& state);
corio::task<int> job(int t);
corio::task<int> fetch(int id);
void use(int value);
void log(const std::string& message);

extern corio::net::tcp_stream s;
extern corio::net::tcp_stream tcp;
extern corio::net::tcp_stream tcp2;
extern corio::net::tcp_listener listener;
extern corio::receiver<int> rx1;
extern corio::receiver<std::string> rx2;
extern corio::mutex m;
extern std::array<std::byte, 4096> buf;
extern std::span<const std::byte> bytes;
