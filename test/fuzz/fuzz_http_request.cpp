// libFuzzer target: http::parser (samples/http/) on arbitrary bytes, as the servers feed it.
//
// Input: one byte choosing the limits, two bytes seeding the split, then the bytes a client
// sends (requests, pipelined or not). Checked (http_drive.hpp): no crash, UB or leak; requests
// or one of the documented error statuses; limits respected; and the same requests, error and
// EOF status whether the bytes come whole, in the seeded pieces or one at a time.
#include "http_drive.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

// Small limits let short inputs reach 413 and 431, and their edges.
http::limits limits_for(std::uint32_t choice) {
  http::limits l;
  switch (choice % 4) {
    case 1:
      l.max_head_bytes = 64;
      l.max_body_bytes = 16;
      break;
    case 2:
      l.max_head_bytes = 256;
      l.max_body_bytes = 128;
      break;
    case 3:
      l.max_head_bytes = 24;
      l.max_body_bytes = 0;
      break;
    default:
      break;  // the servers' defaults
  }
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  http::limits lim = limits_for(fuzz::take_u32(in, 1));
  std::uint32_t seed = fuzz::take_u32(in, 2);
  fuzz::drive_all(in, lim, seed);
  return 0;
}
