#include "ring.hpp"

#include "tsan.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
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
    case ENOMEM:
      why = fmt::format(
          "io_uring_setup could not allocate a ring of {} entries: kernels before 5.12 charge "
          "rings to RLIMIT_MEMLOCK; raise it (ulimit -l) or lower runtime_options::ring_entries",
          entries);
      break;
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

}  // namespace

kernel_features probe_kernel(const ring_config& config) {
  kernel_features f;
  io_uring r{};
  int err = EINVAL;
  bool ok = false;
  auto try_all = [&](auto const& list) {
    for (unsigned flags : list) {
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

  f.single_issuer = f.setup_flags & IORING_SETUP_SINGLE_ISSUER;
  f.defer_taskrun = f.setup_flags & IORING_SETUP_DEFER_TASKRUN;
  f.taskrun_flag = f.setup_flags & IORING_SETUP_TASKRUN_FLAG;
  f.ext_arg = r.features & IORING_FEAT_EXT_ARG;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&r)) {
    f.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    io_uring_free_probe(probe);
  }
  f.cancel_any = probe_cancel_any(r);
  bool nodrop = r.features & IORING_FEAT_NODROP;
  exit_ring(r);

  if (!f.cancel_any || !f.ext_arg || !nodrop) {
    throw_ring_error(ENOSYS,
                     "corio: this kernel's io_uring lacks IORING_ASYNC_CANCEL_ANY, "
                     "IORING_FEAT_EXT_ARG or IORING_FEAT_NODROP; corio needs Linux 5.19 or later");
  }
  {
    // Registering the ring fd saves a file lookup per io_uring_enter (5.18+); probe it once.
    io_uring t{};
    if (try_setup(t, 2, f.setup_flags & ~IORING_SETUP_SQPOLL, config) == 0) {
      f.register_ring_fd = io_uring_register_ring_fd(&t) == 1;
      exit_ring(t);
    }
  }
  return f;
}

ring::ring(const ring_config& config, const kernel_features& features) {
  int rc = try_setup(ring_, config.entries, features.setup_flags, config);
  if (rc < 0) throw_setup_error(-rc, config.entries);
  defer_taskrun_ = features.defer_taskrun;
  taskrun_flag_ = features.taskrun_flag;
  if (features.register_ring_fd) registered_ = io_uring_register_ring_fd(&ring_) == 1;
}

ring::~ring() {
  exit_ring(ring_);
}

void ring::unregister_ring_fd() noexcept {
  if (registered_) {
    (void)io_uring_unregister_ring_fd(&ring_);
    registered_ = false;
  }
}

int ring::submit() noexcept {
  for (;;) {
    int rc = io_uring_submit(&ring_);
    if (rc != -EINTR) return rc;
  }
}

int ring::submit_and_get_events() noexcept {
  for (;;) {
    int rc = io_uring_submit_and_get_events(&ring_);
    if (rc != -EINTR) return rc;
  }
}

int ring::submit_and_wait(std::int64_t timeout_ns) noexcept {
  io_uring_cqe* cqe = nullptr;
  if (timeout_ns < 0) return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
  __kernel_timespec ts{};
  ts.tv_sec = timeout_ns / 1'000'000'000;
  ts.tv_nsec = timeout_ns % 1'000'000'000;
  return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

}  // namespace corio::detail
