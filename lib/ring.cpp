#include "ring.hpp"

#include "tsan.hpp"

#include <fmt/format.h>

#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace corio::detail {

std::string errno_hint(int err) {
  switch (err) {
    case EMFILE:
      return "the process is out of file descriptors (RLIMIT_NOFILE; raise it with ulimit -n)";
    case ENFILE:
      return "the system is out of file descriptors (sysctl fs.file-max)";
    case ENOMEM:
      return "out of memory";
    default:
      return "";
  }
}

void throw_ring_error(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), fmt::format("{} (errno {})", what, err));
}

namespace {

// Explains why io_uring_setup failed, with the fix, for the errors seen in the field.
[[noreturn]] void throw_setup_error(int err, unsigned entries) {
  std::string why;
  switch (err) {
    case ENOSYS:
      why =
          "io_uring_setup is not available: the kernel was built without CONFIG_IO_URING, or a "
          "seccomp filter (such as a container runtime's default profile) blocks it; run on a "
          "kernel with io_uring and allow the io_uring_* system calls";
      break;
    case EPERM:
      why =
          "io_uring_setup was refused: io_uring is disabled by the sysctl kernel.io_uring_disabled "
          "(set it to 0), or restricted to the group named in kernel.io_uring_group, or blocked "
          "by a security module";
      break;
    case ENOMEM: {
      // Linux before 5.12, and again recent kernels (6.18 does), charge the rings of a process
      // without CAP_IPC_LOCK to RLIMIT_MEMLOCK; the current limit shows whether it is the cause.
      rlimit lim{};
      std::string now = "unknown";
      if (::getrlimit(RLIMIT_MEMLOCK, &lim) == 0) {
        now = lim.rlim_cur == RLIM_INFINITY ? "unlimited" : fmt::format("{} bytes", lim.rlim_cur);
      }
      why = fmt::format(
          "io_uring_setup could not allocate a ring of {} entries: the kernel charges ring "
          "memory to RLIMIT_MEMLOCK (now {}) for processes without CAP_IPC_LOCK; raise it "
          "(ulimit -l, LimitMEMLOCK= in a systemd unit, --ulimit memlock= for a container) or "
          "lower runtime_options::ring_entries, unless the system is out of memory",
          entries, now);
      break;
    }
    case EMFILE:
    case ENFILE:
      why = "io_uring_setup needs a file descriptor: " + errno_hint(err);
      break;
    case EINVAL:
      why =
          "io_uring_setup rejected every flag combination corio can use; the kernel is too old "
          "(corio needs Linux 5.19 or later, 6.1 or later for best performance)";
      break;
    default:
      why = "io_uring_setup failed";
      break;
  }
  throw_ring_error(err, "corio: cannot create an io_uring ring: " + why);
}

int try_setup(io_uring& r, unsigned entries, unsigned flags, const ring_config& config) {
#ifdef CORIO_FAULT_INJECTION
  if (int err = fault::setup_errno()) return -err;
#endif
  io_uring_params p{};
  p.flags = flags | IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4;
  if (flags & IORING_SETUP_SQPOLL) p.sq_thread_idle = config.sqpoll_idle_ms;
  int rc = io_uring_queue_init_params(entries, &r, &p);
  if (rc == 0) tsan::ring_acquired();
  return rc;
}

void exit_ring(io_uring& r) {
  tsan::ring_released();
  io_uring_queue_exit(&r);
}

// The flag sets tried in order, best first.
constexpr unsigned base_flags = IORING_SETUP_SUBMIT_ALL;
constexpr unsigned tried_flags[] = {
    base_flags | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
        IORING_SETUP_TASKRUN_FLAG,
    base_flags | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    base_flags | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    base_flags,
};
constexpr unsigned tried_sqpoll_flags[] = {
    base_flags | IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER,
    base_flags | IORING_SETUP_SQPOLL,
};

// True when IORING_ASYNC_CANCEL_ANY is understood (5.19+): with nothing to cancel, the kernel
// answers -ENOENT; a kernel that does not know the flag answers -EINVAL.
bool probe_cancel_any(io_uring& r) {
  io_uring_sqe* sqe = io_uring_get_sqe(&r);
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
  sqe->user_data = 1;
  if (io_uring_submit(&r) != 1) return false;
  io_uring_cqe* cqe = nullptr;
  if (io_uring_wait_cqe(&r, &cqe) != 0) return false;
  bool ok = cqe->res == -ENOENT || cqe->res == 0;
  io_uring_cqe_seen(&r, cqe);
  return ok;
}

// True when the kernel arms a multishot accept (5.19+) on a listening socket: cancelled, it ends
// with -ECANCELED, where a kernel without IORING_ACCEPT_MULTISHOT rejects the flag (-EINVAL).
bool probe_multishot_accept(io_uring& r) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  bool ok = false;
  // Binding only the family autobinds to a free abstract address.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(sa_family_t)) == 0 &&
      ::listen(fd, 1) == 0) {
    constexpr std::uint64_t accept_ud = 2, cancel_ud = 3;
    io_uring_sqe* sqe = io_uring_get_sqe(&r);
    io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    sqe->user_data = accept_ud;
    // One SQE per submit: the ring may have a single entry (ring_entries = 1).
    bool submitted = false;
    if (io_uring_submit(&r) == 1 && (sqe = io_uring_get_sqe(&r)) != nullptr) {
      io_uring_prep_cancel64(sqe, accept_ud, 0);
      sqe->user_data = cancel_ud;
      submitted = io_uring_submit(&r) == 1;
    }
    if (submitted) {
      bool accept_done = false, cancel_done = false;
      while (!accept_done || !cancel_done) {
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{1, 0};  // a stuck request is cancelled by closing the ring
        if (io_uring_wait_cqe_timeout(&r, &cqe, &ts) != 0) break;
        if (cqe->user_data == cancel_ud) {
          cancel_done = true;
        } else if (cqe->user_data == accept_ud) {
          if (cqe->res >= 0) {
            ::close(cqe->res);  // nobody connects, but an accepted fd must not leak
          } else {
            ok = cqe->res == -ECANCELED;
          }
          if (!(cqe->flags & IORING_CQE_F_MORE)) accept_done = true;
        }
        io_uring_cqe_seen(&r, cqe);
      }
    }
  }
  ::close(fd);
  return ok;
}

// True when the kernel knows IORING_REGISTER_PBUF_RING (5.19+): registering a one-entry ring
// succeeds, or fails for lack of lockable memory; an older kernel answers -EINVAL.
bool probe_buffer_ring(io_uring& r) {
  long page = ::sysconf(_SC_PAGESIZE);
  void* mem = ::mmap(nullptr, static_cast<std::size_t>(page), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
  reg.ring_entries = 1;
  reg.bgid = 0;
  int rc = io_uring_register_buf_ring(&r, &reg, 0);
  if (rc == 0) (void)io_uring_unregister_buf_ring(&r, 0);
  ::munmap(mem, static_cast<std::size_t>(page));
  return rc == 0 || rc == -ENOMEM;
}

// What CORIO_TEST_DISABLE_FEATURES (ring.hpp) makes the probe pretend the kernel lacks.
struct disabled_features {
  unsigned setup_flags = 0;  // flag sets with any of these are refused as if with EINVAL
  bool msg_ring = false;
  bool cancel_any = false;
  bool ext_arg = false;
  bool register_ring_fd = false;
  bool send_zc = false;  // the opcode probe's answer for IORING_OP_SEND_ZC
  bool membarrier = false;
};

disabled_features test_disabled_features() {
  disabled_features d;
  const char* env = std::getenv("CORIO_TEST_DISABLE_FEATURES");
  if (env == nullptr) return d;
  std::string_view rest(env);
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (name.empty()) continue;
    if (name == "single_issuer") {
      d.setup_flags |= IORING_SETUP_SINGLE_ISSUER;
    } else if (name == "defer_taskrun") {
      d.setup_flags |= IORING_SETUP_DEFER_TASKRUN;
    } else if (name == "coop_taskrun") {
      d.setup_flags |= IORING_SETUP_COOP_TASKRUN;
    } else if (name == "taskrun_flag") {
      d.setup_flags |= IORING_SETUP_TASKRUN_FLAG;
    } else if (name == "msg_ring") {
      d.msg_ring = true;
    } else if (name == "cancel_any") {
      d.cancel_any = true;
    } else if (name == "ext_arg") {
      d.ext_arg = true;
    } else if (name == "register_ring_fd") {
      d.register_ring_fd = true;
    } else if (name == "send_zc") {
      d.send_zc = true;
    } else if (name == "membarrier") {
      d.membarrier = true;
    } else {
      throw std::invalid_argument(fmt::format(
          "corio: CORIO_TEST_DISABLE_FEATURES names an unknown feature '{}' (known: "
          "single_issuer, defer_taskrun, coop_taskrun, taskrun_flag, msg_ring, cancel_any, "
          "ext_arg, register_ring_fd, send_zc, membarrier)",
          name));
    }
  }
  return d;
}

}  // namespace

kernel_features probe_kernel(const ring_config& config) {
  const disabled_features disabled = test_disabled_features();
  kernel_features f;
  if (utsname u{}; ::uname(&u) == 0) f.kernel_release = u.release;
  io_uring r{};
  int err = EINVAL;
  bool ok = false;
  auto try_all = [&](auto const& list) {
    for (unsigned flags : list) {
      if (flags & disabled.setup_flags) continue;  // err stays EINVAL, as from the kernel
      int rc = try_setup(r, config.entries, flags, config);
      if (rc == 0) {
        f.setup_flags = flags;
        ok = true;
        return;
      }
      err = -rc;
      if (err != EINVAL) return;  // not a flag problem: report it as is
    }
  };
  if (config.sqpoll) {
    try_all(tried_sqpoll_flags);
  } else {
    try_all(tried_flags);
  }
  if (!ok) throw_setup_error(err, config.entries);

  f.sqpoll = f.setup_flags & IORING_SETUP_SQPOLL;
  f.single_issuer = f.setup_flags & IORING_SETUP_SINGLE_ISSUER;
  f.defer_taskrun = f.setup_flags & IORING_SETUP_DEFER_TASKRUN;
  f.coop_taskrun = f.setup_flags & IORING_SETUP_COOP_TASKRUN;
  f.taskrun_flag = f.setup_flags & IORING_SETUP_TASKRUN_FLAG;
  f.ext_arg = (r.features & IORING_FEAT_EXT_ARG) && !disabled.ext_arg;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&r)) {
    auto has = [probe](int op) { return io_uring_opcode_supported(probe, op) != 0; };
    f.msg_ring = has(IORING_OP_MSG_RING) && !disabled.msg_ring;
    f.op_read = has(IORING_OP_READ);
    f.op_write = has(IORING_OP_WRITE);
    f.op_send = has(IORING_OP_SEND);
    f.op_recv = has(IORING_OP_RECV);
    f.op_sendmsg = has(IORING_OP_SENDMSG);
    f.op_recvmsg = has(IORING_OP_RECVMSG);
    f.op_accept = has(IORING_OP_ACCEPT);
    f.op_connect = has(IORING_OP_CONNECT);
    f.op_shutdown = has(IORING_OP_SHUTDOWN);
    f.op_socket = has(IORING_OP_SOCKET);
    f.op_send_zc = has(IORING_OP_SEND_ZC) && !disabled.send_zc;
    f.op_sendmsg_zc = has(IORING_OP_SENDMSG_ZC);
    f.op_openat = has(IORING_OP_OPENAT);
    f.op_close = has(IORING_OP_CLOSE);
    f.op_statx = has(IORING_OP_STATX);
    f.op_fsync = has(IORING_OP_FSYNC);
    f.op_fallocate = has(IORING_OP_FALLOCATE);
    f.op_splice = has(IORING_OP_SPLICE);
    f.op_provide_buffers = has(IORING_OP_PROVIDE_BUFFERS);
    f.op_uring_cmd = has(IORING_OP_URING_CMD);
    io_uring_free_probe(probe);
  }
  f.cancel_any = !disabled.cancel_any && probe_cancel_any(r);
  if (f.op_accept) f.multishot_accept = probe_multishot_accept(r);
  f.buffer_ring = probe_buffer_ring(r);
  bool nodrop = r.features & IORING_FEAT_NODROP;
  exit_ring(r);

  if (!f.cancel_any || !f.ext_arg || !nodrop) {
    std::string missing;
    auto lacks = [&missing](bool has, const char* what) {
      if (has) return;
      if (!missing.empty()) missing += ", ";
      missing += what;
    };
    lacks(f.cancel_any, "IORING_ASYNC_CANCEL_ANY (to cancel every operation at shutdown)");
    lacks(f.ext_arg, "IORING_FEAT_EXT_ARG (to wait with a timeout)");
    lacks(nodrop, "IORING_FEAT_NODROP (so that no completion is lost)");
    throw_ring_error(ENOSYS, fmt::format("corio: the io_uring of this kernel ({}) lacks {}; corio "
                                         "needs Linux 5.19 or later: upgrade the kernel",
                                         f.kernel_release, missing));
  }
  if (!disabled.register_ring_fd) {
    // Registering the ring fd saves a file lookup per io_uring_enter (5.18+); probe it once.
    io_uring t{};
    if (try_setup(t, 2, f.setup_flags & ~IORING_SETUP_SQPOLL, config) == 0) {
      f.register_ring_fd = io_uring_register_ring_fd(&t) == 1;
      exit_ring(t);
    }
  }
  // Registration is per process and idempotent; spin_lock's bias needs it (wait_list.hpp).
  f.membarrier = !disabled.membarrier &&
                 ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  return f;
}

ring::ring(const ring_config& config, const kernel_features& features) {
#ifdef CORIO_FAULT_INJECTION
  // `entries`: the probe ran with the configured size, which only bounds what works; a smaller
  // ring exercises the full-SQ and CQ-overflow paths.
  ring_config sized = config;
  if (fault_.entries() != 0) sized.entries = fault_.entries();
  int rc = try_setup(ring_, sized.entries, features.setup_flags, sized);
  if (rc < 0) throw_setup_error(-rc, sized.entries);
#else
  int rc = try_setup(ring_, config.entries, features.setup_flags, config);
  if (rc < 0) throw_setup_error(-rc, config.entries);
#endif
  fork_entry_.ring = &ring_;
  fork_guard::add_ring(&fork_entry_);
  defer_taskrun_ = features.defer_taskrun;
  taskrun_flag_ = features.taskrun_flag;
  if (features.register_ring_fd) registered_ = io_uring_register_ring_fd(&ring_) == 1;
}

ring::~ring() {
  fork_guard::remove_ring(&fork_entry_);
  exit_ring(ring_);
}

void ring::unregister_ring_fd() noexcept {
  if (registered_) {
    (void)io_uring_unregister_ring_fd(&ring_);
    registered_ = false;
  }
}

#ifdef CORIO_FAULT_INJECTION
int ring::submit_first(unsigned k) noexcept {
  // liburing flushes [sqe_head, sqe_tail): hide the SQEs past the first k for one submit.
  unsigned tail = ring_.sq.sqe_tail;
  ring_.sq.sqe_tail = ring_.sq.sqe_head + k;
  int rc;
  do {
    rc = io_uring_submit(&ring_);
  } while (rc == -EINTR);
  ring_.sq.sqe_tail = tail;
  return rc;
}

void ring::after_prepare() noexcept {
  if (!fault_.eager_submit(ring_)) return;
  std::uint64_t ud = ring_.sq.sqes[(ring_.sq.sqe_tail - 1) & ring_.sq.ring_mask].user_data;
  fault_.before_flush(ring_);
  // Submit and run the task work at once: the CQE of an op that completes inline is posted
  // while its awaiter is still in await_suspend. A refused submit leaves the SQEs queued.
  int rc;
  do {
    rc = io_uring_submit_and_get_events(&ring_);
  } while (rc == -EINTR);
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (cqe->user_data == ud) {
      fault::count_completed_on_submit();
      break;
    }
  }
}
#endif

int ring::submit() noexcept {
#ifdef CORIO_FAULT_INJECTION
  fault_.before_flush(ring_);
  if (int rc = fault_.submit_fault()) return rc;  // nothing flushed: the SQEs go next time
  if (unsigned k = fault_.partial_submit(ring_)) return submit_first(k);
#endif
  for (;;) {
    int rc = io_uring_submit(&ring_);
    if (rc != -EINTR) return rc;
  }
}

int ring::submit_and_get_events() noexcept {
#ifdef CORIO_FAULT_INJECTION
  fault_.before_flush(ring_);
  if (int rc = fault_.submit_fault()) return rc;
  if (unsigned k = fault_.partial_submit(ring_)) return submit_first(k);
#endif
  for (;;) {
    int rc = io_uring_submit_and_get_events(&ring_);
    if (rc != -EINTR) return rc;
  }
}

int ring::submit_and_wait(std::int64_t timeout_ns) noexcept {
#ifdef CORIO_FAULT_INJECTION
  fault_.before_flush(ring_);
  if (fault_.held() != 0) {
    // A held CQE is ready for the caller's next reap: waiting in the kernel could sleep forever.
    int rc;
    do {
      rc = io_uring_submit(&ring_);
    } while (rc == -EINTR);
    return rc < 0 ? rc : 0;
  }
  if (int rc = fault_.wait_fault()) return rc;  // as a signal would: the caller looks again
  // io_uring_enter returns early, without waiting, when it took fewer SQEs than it was given.
  if (unsigned k = fault_.partial_submit(ring_)) return submit_first(k);
#endif
  io_uring_cqe* cqe = nullptr;
  if (timeout_ns < 0) return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
  __kernel_timespec ts{};
  ts.tv_sec = timeout_ns / 1'000'000'000;
  ts.tv_nsec = timeout_ns % 1'000'000'000;
  return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

}  // namespace corio::detail
