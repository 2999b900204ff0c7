// libFuzzer target: ws::utf8_validator (samples/websocket/utf8.hpp) against utf8_reference.hpp.
//
// Input: one byte seeding the split, then the bytes of a text message. The validator gets them
// in the seeded pieces (a message's fragments, split anywhere, even inside a character), then
// again after reset() all at once and byte by byte. After each piece ending at byte e, feed()
// must return viable[e] and complete() must be complete[e]; a failure stays a failure.
#include "check.hpp"
#include "split.hpp"
#include "utf8_reference.hpp"
#include "websocket/utf8.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace {

void check_split(ws::utf8_validator& v, std::span<const std::byte> s,
                 const fuzz::utf8_reference& ref, fuzz::splitter* split, std::size_t step) {
  v.reset();
  FUZZ_CHECK(v.complete());
  std::size_t at = 0;
  while (at < s.size()) {
    std::size_t n = std::min(s.size() - at, split != nullptr ? split->next() : step);
    bool ok = v.feed(s.subspan(at, n));
    at += n;
    FUZZ_CHECK(ok == ref.viable[at]);
    FUZZ_CHECK(v.complete() == ref.complete[at]);
  }
  // An empty fragment changes nothing.
  FUZZ_CHECK(v.feed({}) == ref.viable[s.size()]);
  FUZZ_CHECK(v.complete() == ref.complete[s.size()]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz::splitter split(fuzz::take_u32(in, 1));
  auto s = std::as_bytes(std::span(in.data(), in.size()));
  fuzz::utf8_reference ref(s);
  // One validator for every pass: reset() must forget all of the previous message.
  ws::utf8_validator v;
  check_split(v, s, ref, &split, 0);
  check_split(v, s, ref, nullptr, s.size() + 1);
  check_split(v, s, ref, nullptr, 1);
  return 0;
}
