// Fault injection behind the ring seam (fault.hpp); compiled only with -Dfault_injection=true.
#include "fault.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace corio::detail::fault {

namespace {

// Absent from liburing 2.3's headers; the kernel has it since 6.10 (io_uring/nop.c): the NOP
// completes with the SQE's len as its result.
constexpr std::uint32_t nop_inject_result = 1u << 0;

// The worker's internal user_data values (worker.hpp: ud_*) are small integers; io_ops are
// pointers. Only io_ops are touched: the internal SQEs (the eventfd read, MSG_RING, cancels)
// have exact-size or no buffers and are not the library's data path.
constexpr std::uint64_t first_op_user_data = 4096;

std::atomic<std::uint64_t> rings_created{0};
std::atomic<std::uint64_t> n_partial{0}, n_eager{0}, n_completed_on_submit{0};

std::uint64_t splitmix(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// One clock seed per process, so that every ring of a run derives from the one printed value.
std::uint64_t process_seed() {
  static const std::uint64_t seed = static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count() & 0x7fffffffffffull);
  return seed;
}

double parse_probability(std::string_view key, std::string_view v) {
  std::string s(v);
  char* end = nullptr;
  double p = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(p >= 0 && p <= 1)) {
    throw std::invalid_argument(
        fmt::format("corio: CORIO_FAULTS: {}={} is not a probability in [0, 1]", key, v));
  }
  return p;
}

std::uint64_t parse_uint(std::string_view key, std::string_view v, std::uint64_t max) {
  std::string s(v);
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || n > max) {
    throw std::invalid_argument(fmt::format("corio: CORIO_FAULTS: {}={} is out of range", key, v));
  }
  return n;
}

int parse_errno(std::string_view key, std::string_view v) {
  static constexpr std::pair<std::string_view, int> names[] = {{"ENOSYS", ENOSYS},
                                                               {"EPERM", EPERM},
                                                               {"ENOMEM", ENOMEM},
                                                               {"EINVAL", EINVAL},
                                                               {"EMFILE", EMFILE}};
  for (auto [name, err] : names) {
    if (v == name) return err;
  }
  auto n = parse_uint(key, v, 4095);
  if (n == 0) throw std::invalid_argument("corio: CORIO_FAULTS: setup wants a non-zero errno");
  return static_cast<int>(n);
}

// Once per distinct CORIO_FAULTS value, so a failing log always holds the seed to replay.
void announce(const config& c, std::string_view env, bool seed_given) {
  static std::mutex m;
  static std::string last;
  std::lock_guard lock(m);
  if (last == env) return;
  last = env;
  fmt::print(stderr,
             "corio fault injection: seed={}{} (CORIO_FAULTS={}; replay with "
             "CORIO_FAULTS=seed={},...)\n",
             c.seed, seed_given ? "" : " (from the clock)", env, c.seed);
}

// Whether a shorter transfer on fd is one the kernel gives for the same request and that loses
// nothing: byte-stream pipes and stream sockets. A datagram socket or a packet-mode pipe
// truncates a message to a shorter buffer (and sends a shorter one); regular files are left
// alone too: Linux transfers them in full short of the end of file, and callers (and tests) rely
// on a read of a known size returning it.
bool is_byte_stream(int fd) noexcept {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) return false;
  if (S_ISFIFO(st.st_mode)) {
    int fl = ::fcntl(fd, F_GETFL);  // O_DIRECT: a packet-mode pipe (pipe2(2)) keeps write bounds
    return fl >= 0 && (fl & O_DIRECT) == 0;
  }
  if (S_ISSOCK(st.st_mode)) {
    int type = 0;
    socklen_t len = sizeof type;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
  }
  return false;  // character devices, eventfd, timerfd...: reads of a fixed size
}

}  // namespace

config load() {
  config c;
  const char* env = std::getenv("CORIO_FAULTS");
  if (env == nullptr || *env == '\0') return c;
  bool seed_given = false;
  std::string_view rest(env);
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    if (key == "seed") {
      c.seed = parse_uint(key, value, ~std::uint64_t{0});
      seed_given = true;
    } else if (key == "short") {
      c.short_p = parse_probability(key, value);
    } else if (key == "reorder") {
      c.reorder_p = parse_probability(key, value);
    } else if (key == "submit") {
      c.submit_p = parse_probability(key, value);
    } else if (key == "error") {
      c.error_p = parse_probability(key, value);
    } else if (key == "partial") {
      c.partial_p = parse_probability(key, value);
    } else if (key == "eager") {
      c.eager_p = parse_probability(key, value);
    } else if (key == "setup") {
      c.setup_errno = parse_errno(key, value);
    } else if (key == "entries") {
      c.entries = static_cast<unsigned>(parse_uint(key, value, 32768));
      if (c.entries == 0) {
        throw std::invalid_argument("corio: CORIO_FAULTS: entries must be at least 1");
      }
    } else {
      throw std::invalid_argument(fmt::format(
          "corio: CORIO_FAULTS names an unknown fault '{}' (known: seed, short, reorder, submit, "
          "error, partial, eager, setup, entries)",
          key));
    }
  }
  if (!seed_given) c.seed = process_seed();
  if (c.active()) announce(c, env, seed_given);
  return c;
}

injector::injector() : cfg_(load()) {
  std::uint64_t n = rings_created.fetch_add(1, std::memory_order_relaxed);
  state_ = cfg_.seed ^ (n * 0xd1b54a32d192ed03ull);
}

std::uint64_t injector::next() noexcept {
  return splitmix(state_);
}

bool injector::chance(double p) noexcept {
  if (p <= 0) return false;
  return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
}

void injector::before_flush(io_uring& r) noexcept {
  if (cfg_.short_p <= 0 && cfg_.error_p <= 0) return;
  unsigned head = r.sq.sqe_head, tail = r.sq.sqe_tail;
  // seen_tail_ lies in [head, tail] unless something flushed without us (nothing does); then
  // judge everything unflushed rather than nothing.
  if (tail - seen_tail_ > tail - head) seen_tail_ = head;
  for (; seen_tail_ != tail; ++seen_tail_) mutate(r.sq.sqes[seen_tail_ & r.sq.ring_mask]);
}

void injector::mutate(io_uring_sqe& sqe) noexcept {
  if (sqe.user_data < first_op_user_data) return;
  // A link chain fails on a short transfer or an error and cancels the rest; registered files and
  // provided buffers change what len means. None of these are touched.
  if (sqe.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT)) {
    return;
  }
  int err = 0;
  switch (sqe.opcode) {
    case IORING_OP_READ:
    case IORING_OP_READV:
    case IORING_OP_RECV:
    case IORING_OP_RECVMSG:
      err = (next() & 1) ? ECONNRESET : EIO;
      break;
    case IORING_OP_WRITE:
    case IORING_OP_WRITEV:
    case IORING_OP_SEND:
    case IORING_OP_SEND_ZC:  // replaced by a NOP: one CQE, as a send_zc refused before it started
    case IORING_OP_SENDMSG:
      err = (next() & 1) ? EPIPE : ECONNRESET;
      break;
    case IORING_OP_ACCEPT:
      // Multishot accepts (ioprio flag) end on an error too, which the listener must survive.
      err = (next() & 1) ? ECONNABORTED : EMFILE;
      break;
    case IORING_OP_CONNECT:
      err = (next() & 1) ? ECONNREFUSED : ETIMEDOUT;
      break;
    default:
      return;
  }
  if (chance(cfg_.error_p)) {
    std::uint64_t ud = sqe.user_data;
    std::memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_NOP;
    sqe.rw_flags = static_cast<__kernel_rwf_t>(nop_inject_result);
    sqe.len = static_cast<std::uint32_t>(-err);
    sqe.user_data = ud;
    return;
  }
  if (!chance(cfg_.short_p)) return;
  switch (sqe.opcode) {
    case IORING_OP_RECV:
    case IORING_OP_SEND:
      if (sqe.ioprio & IORING_RECV_MULTISHOT) return;
      [[fallthrough]];
    case IORING_OP_SEND_ZC:
    case IORING_OP_READ:
    case IORING_OP_WRITE:
      if (sqe.len > 1 && is_byte_stream(sqe.fd)) {
        sqe.len = 1 + static_cast<std::uint32_t>(next() % (sqe.len - 1));
      }
      return;
    case IORING_OP_READV:
    case IORING_OP_WRITEV: {
      // Fewer iovecs, never a changed one: the iovec array is the caller's (exact gather writes
      // advance it themselves). The kept prefix must hold a byte, or a stream would see a
      // 0-byte result, which reads as an end of stream.
      if (sqe.len < 2 || !is_byte_stream(sqe.fd)) return;
      const auto* iov = reinterpret_cast<const iovec*>(static_cast<std::uintptr_t>(sqe.addr));
      unsigned first = 0;
      while (first < sqe.len && iov[first].iov_len == 0) ++first;
      if (first + 1 >= sqe.len) return;
      sqe.len = first + 1 + static_cast<std::uint32_t>(next() % (sqe.len - first - 1));
      return;
    }
    default:  // sendmsg/recvmsg: the msghdr is the caller's; accept/connect have no length
      return;
  }
}

int injector::submit_fault() noexcept {
  if (!chance(cfg_.submit_p)) return 0;
  return (next() & 1) ? -EAGAIN : -EBUSY;
}

int setup_errno() {
  return load().setup_errno;
}

unsigned injector::partial_submit(const io_uring& r) noexcept {
  unsigned head = r.sq.sqe_head, n = r.sq.sqe_tail - head;
  if (n < 2 || (r.flags & IORING_SETUP_SQPOLL) || !chance(cfg_.partial_p)) return 0;
  // k in [1, n-1], moved down past any SQE that links to the next: a link chain goes whole.
  for (unsigned k = 1 + static_cast<unsigned>(next() % (n - 1)); k > 0; --k) {
    const io_uring_sqe& last = r.sq.sqes[(head + k - 1) & r.sq.ring_mask];
    if ((last.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)) == 0) {
      n_partial.fetch_add(1, std::memory_order_relaxed);
      return k;
    }
  }
  return 0;
}

bool injector::eager_submit(const io_uring& r) noexcept {
  if (cfg_.eager_p <= 0 || r.sq.sqe_tail == r.sq.sqe_head) return false;
  const io_uring_sqe& newest = r.sq.sqes[(r.sq.sqe_tail - 1) & r.sq.ring_mask];
  // Not inside a link chain being built (the next SQE belongs to it), nor for internal SQEs.
  if (newest.user_data < first_op_user_data) return false;
  if (newest.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)) return false;
  if (!chance(cfg_.eager_p)) return false;
  n_eager.fetch_add(1, std::memory_order_relaxed);
  return true;
}

totals counts() noexcept {
  return {n_partial.load(std::memory_order_relaxed), n_eager.load(std::memory_order_relaxed),
          n_completed_on_submit.load(std::memory_order_relaxed)};
}

void count_completed_on_submit() noexcept {
  n_completed_on_submit.fetch_add(1, std::memory_order_relaxed);
}

int injector::wait_fault() noexcept {
  return chance(cfg_.submit_p) ? -EINTR : 0;
}

injector::verdict injector::judge(const io_uring_cqe& cqe) noexcept {
  // CQEs of one request (multishot, or notifications) must stay in order: once one is held,
  // the later ones are held behind it, or left in the CQ when there is no room.
  for (unsigned i = 0; i < held_count_; ++i) {
    if (held_[(held_first_ + i) % capacity].user_data == cqe.user_data) {
      return held_count_ < capacity ? verdict::hold : verdict::stop;
    }
  }
  if (held_count_ < capacity && chance(cfg_.reorder_p)) return verdict::hold;
  return verdict::deliver;
}

}  // namespace corio::detail::fault
