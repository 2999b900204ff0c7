// One WebSocket connection after the upgrade: an echo of every message, over any corio byte
// stream (`co_await s.read(span)` -> size_t, `co_await s.write_all(span)`; `writev` is used when
// the stream has it).
//
// Buffering: `in` holds bytes read but not consumed, [begin, end). Frame headers and control
// payloads are parsed from it; a data frame's payload goes into `message` -- what is buffered is
// copied, the rest is read straight into `message`, so a 16 MiB message is read once and copied
// once at most. Payloads are unmasked in place, and text is validated frame by frame as it
// arrives (a character may straddle frames).
//
// Coroutine bodies here never use `co_await` directly as a condition (GCC 12 miscompiles it;
// see docs/design.md): the result goes into a local first.
//
// Failures (RFC 6455 7.1.7, "fail the WebSocket connection"): the server sends a close frame
// with the code (1002 protocol error, 1007 invalid UTF-8, 1009 too big), waits a bounded time
// for the client's close, and ends the connection.
#pragma once

#include "frame.hpp"
#include "utf8.hpp"

#include <corio/corio.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <span>
#include <vector>

namespace ws {

struct session_options {
  std::uint64_t max_message = (16u << 20) + 1024;  // else close 1009
  std::chrono::milliseconds close_wait{2'000};     // for the client's close after ours
};

template <class Stream>
class session {
 public:
  session(Stream& s, std::span<const std::byte> initial, const session_options& o)
      : s_(s), o_(o), in_(std::max<std::size_t>(64 * 1024, initial.size())) {
    if (!initial.empty()) std::memcpy(in_.data(), initial.data(), initial.size());
    end_ = initial.size();
  }

  /// Echoes until the close handshake, a protocol failure or EOF. Socket errors throw.
  corio::task<> run() {
    for (;;) {
      frame_header h;
      std::size_t used = 0;
      parse_status ps = parse_header(buffered(), h, used);
      if (ps == parse_status::need_more) {
        const bool more = co_await fill();
        if (!more) co_return;  // EOF without a close frame
        continue;
      }
      if (ps == parse_status::bad_length) {
        co_await fail(close_protocol_error, unparseable);
        co_return;
      }
      begin_ += used;
      if (h.rsv != 0 || !is_known(h.opcode) || !h.masked) {
        co_await fail(close_protocol_error, h.length);
        co_return;
      }
      if (is_control(h.opcode)) {
        if (!h.fin || h.length > 125) {
          co_await fail(close_protocol_error, h.length);
          co_return;
        }
        auto p = std::span(control_).first(static_cast<std::size_t>(h.length));
        const bool got = co_await take(p);
        if (!got) co_return;
        unmask(p, h.mask, 0);
        if (h.opcode == op_ping) {
          co_await send(op_pong, p);
        } else if (h.opcode == op_close) {
          co_await answer_close(p);
          co_return;
        }  // a pong needs no answer
        continue;
      }
      // A data frame: starts a message (text/binary) or continues one.
      if ((h.opcode == op_continuation) != in_message_) {
        co_await fail(close_protocol_error, h.length);
        co_return;
      }
      if (h.opcode != op_continuation) {
        in_message_ = true;
        text_ = h.opcode == op_text;
        message_.clear();
        utf8_.reset();
      }
      if (h.length > o_.max_message - message_.size()) {
        co_await fail(close_too_big, h.length);
        co_return;
      }
      std::size_t start = message_.size();
      message_.resize(start + static_cast<std::size_t>(h.length));
      auto p = std::span(message_).subspan(start);
      const bool got = co_await take(p);
      if (!got) co_return;
      unmask(p, h.mask, 0);
      if (text_ && !utf8_.feed(p)) {
        co_await fail(close_invalid_data, 0);
        co_return;
      }
      if (!h.fin) continue;
      in_message_ = false;
      if (text_ && !utf8_.complete()) {
        co_await fail(close_invalid_data, 0);
        co_return;
      }
      co_await send(text_ ? op_text : op_binary, message_);
      // A huge message's buffer is not kept for the connection's life.
      if (message_.capacity() > 1u << 20) message_ = std::vector<std::byte>();
    }
  }

 private:
  std::span<const std::byte> buffered() const noexcept {
    return std::span(in_).subspan(begin_, end_ - begin_);
  }

  // Reads more into `in_`; false at EOF.
  corio::task<bool> fill() {
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0) {
      std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    std::size_t n = co_await s_.read(std::span(in_).subspan(end_));
    end_ += n;
    co_return n > 0;
  }

  // Fills `out` with the next bytes: the buffered ones, then straight from the stream.
  corio::task<bool> take(std::span<std::byte> out) {
    std::size_t have = std::min(out.size(), end_ - begin_);
    // An empty payload's span may have a null data(), which memcpy must not see.
    if (have > 0) std::memcpy(out.data(), in_.data() + begin_, have);
    begin_ += have;
    while (have < out.size()) {
      std::size_t n = co_await s_.read(out.subspan(have));
      if (n == 0) co_return false;
      have += n;
    }
    co_return true;
  }

  corio::task<> send(std::uint8_t opcode, std::span<const std::byte> payload) {
    // The header lives in the session (one send at a time): GCC 12 cannot keep a std::array
    // local of a coroutine that is used inside a co_await expression.
    std::size_t hl = write_header(head_, true, opcode, payload.size());
    parts_ = {std::span<const std::byte>(head_).first(hl), payload};
    // Write timeouts are the stream's own (set_write_timeout), set by whoever owns it.
    if constexpr (requires { s_.writev(std::span<const std::span<const std::byte>>(parts_)); }) {
      co_await s_.writev(std::span<const std::span<const std::byte>>(parts_));
    } else {
      co_await s_.write_all(parts_[0]);
      if (!payload.empty()) co_await s_.write_all(payload);
    }
  }

  corio::task<> send_close(std::uint16_t code) {
    close_payload_ = {static_cast<std::byte>(code >> 8), static_cast<std::byte>(code)};
    co_await send(op_close, close_payload_);
  }

  // The client closed: check its payload, answer with the same code (or an empty close).
  corio::task<> answer_close(std::span<const std::byte> p) {
    if (p.empty()) {
      co_await send(op_close, {});
      co_return;
    }
    unsigned code =
        p.size() >= 2 ? (static_cast<unsigned>(p[0]) << 8) | static_cast<unsigned>(p[1]) : 0;
    if (p.size() == 1 || !valid_close_code(code)) {
      co_await fail_no_wait(close_protocol_error);
      co_return;
    }
    utf8_validator reason;
    if (!reason.feed(p.subspan(2)) || !reason.complete()) {
      co_await fail_no_wait(close_invalid_data);
      co_return;
    }
    co_await send_close(static_cast<std::uint16_t>(code));
  }

  // Our close in answer to the client's: no close of its to wait for.
  corio::task<> fail_no_wait(std::uint16_t code) { co_await send_close(code); }

  // What is left of the current frame when its header cannot be parsed: the frames after it
  // cannot be found, so only EOF (or the time limit) ends the wait for the client's close.
  static constexpr std::uint64_t unparseable = ~std::uint64_t{0};

  // Fails the connection: our close frame, then the client's close (or EOF), bounded in time.
  // `skip` is the unread rest of the current frame's payload (`unparseable` when unknown).
  corio::task<> fail(std::uint16_t code, std::uint64_t skip) {
    co_await send_close(code);
    try {
      co_await corio::timeout(o_.close_wait, drain_until_close(skip));
    } catch (const corio::timed_out&) {
    }
  }

  // Drops the client's frames (and `skip` payload bytes first) until the header of a close
  // frame or EOF. Nothing is kept: a message in progress no longer matters.
  corio::task<> drain_until_close(std::uint64_t skip) {
    for (;;) {
      std::uint64_t dropped = std::min<std::uint64_t>(skip, end_ - begin_);
      begin_ += static_cast<std::size_t>(dropped);
      skip -= dropped;
      if (skip == 0) {
        frame_header h;
        std::size_t used = 0;
        parse_status ps = parse_header(buffered(), h, used);
        if (ps == parse_status::ok && h.opcode == op_close) co_return;
        if (ps == parse_status::ok) {
          begin_ += used;
          skip = h.length;
          continue;
        }
        if (ps == parse_status::bad_length) skip = unparseable;
      }
      const bool more = co_await fill();
      if (!more) co_return;
    }
  }

  Stream& s_;
  const session_options& o_;
  std::vector<std::byte> in_;
  std::size_t begin_ = 0, end_ = 0;
  std::vector<std::byte> message_;
  bool in_message_ = false, text_ = false;
  utf8_validator utf8_;
  std::array<std::byte, 10> head_{};
  std::array<std::span<const std::byte>, 2> parts_;
  std::array<std::byte, 2> close_payload_{};
  std::array<std::byte, 125> control_{};  // a control frame's payload
};

}  // namespace ws
