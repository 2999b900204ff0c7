// The engine behind model.hpp: fibers on ucontext, the choice trail, and the two strategies.
//
// Control always passes through the engine's main context: a fiber that must give way records
// the next thread in next_ and swaps to main, which swaps to that thread. Under ASan and TSan
// every swap is announced (__sanitizer_*_switch_fiber, __tsan_switch_to_fiber), as their
// documentation requires for user-level stack switching.
#include "model.hpp"

#include <ucontext.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_MODEL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_MODEL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CORIO_MODEL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORIO_MODEL_TSAN 1
#endif
#endif
#if defined(CORIO_MODEL_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if !defined(CORIO_MODEL_TSAN)
#define CORIO_MODEL_NO_TSAN
#elif defined(__clang__)
#define CORIO_MODEL_NO_TSAN __attribute__((disable_sanitizer_instrumentation))
#else
#define CORIO_MODEL_NO_TSAN __attribute__((no_sanitize_thread))
#endif
#if defined(CORIO_MODEL_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace corio::model {

namespace {

constexpr int max_threads = 8;
constexpr std::size_t stack_size = 256 * 1024;  // room for ASan's redzones

std::uint64_t splitmix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

bool slow_build() noexcept {
#if defined(CORIO_MODEL_ASAN) || defined(CORIO_MODEL_TSAN) || !defined(__OPTIMIZE__)
  return true;
#else
  return false;
#endif
}

std::uint64_t scaled(std::uint64_t n) {
  std::uint64_t scale = env_u64("CORIO_MODEL_SCALE", 1);
  std::uint64_t v = (slow_build() ? n / 10 : n) * scale;
  return v == 0 ? 1 : v;
}

int preemption_bound(int fast, int slow) {
  return (slow_build() ? slow : fast) + (env_u64("CORIO_MODEL_DEEP", 0) != 0 ? 1 : 0);
}

class engine {
 public:
  explicit engine(const config& cfg) : cfg_(cfg) {
#if defined(CORIO_MODEL_TSAN)
    main_tsan_ = __tsan_get_current_fiber();
#endif
    if (const char* s = std::getenv("CORIO_MODEL_SCHEDULE"); s != nullptr && *s != '\0') {
      for (; *s != '\0'; ++s) {
        if (*s >= '0' && *s < '0' + max_threads) forced_.push_back(static_cast<int>(*s - '0'));
      }
      replaying_ = true;
    }
  }
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  result run(const std::function<void(execution&)>& setup) {
    result r;
    std::uint64_t only_seed = env_u64("CORIO_MODEL_SEED", 0);
    for (std::uint64_t i = 0; i < cfg_.max_schedules; ++i) {
      std::uint64_t seed = only_seed != 0 ? only_seed : cfg_.seed + i;
      run_one(setup, seed);
      ++r.schedules;
      if (steps_ > r.longest) r.longest = steps_;
      if (!failure_.empty()) {
        r.failure = describe_failure(seed);
        return r;
      }
      if (replaying_ || only_seed != 0) {
        r.replay = true;
        return r;
      }
      if (cfg_.exhaustive && !backtrack()) {
        r.exhausted = true;
        return r;
      }
    }
    return r;
  }

  // ---- called from the hooks ----
  void yield_point(bool spinning) noexcept {
    if (current_ < 0) return;
    if (++steps_ > cfg_.max_steps) {
      record_failure("more than max_steps scheduling points: a livelock, or raise the bound");
      abandon();
    }
    int n = choose(current_, spinning);
    if (n == current_) return;
    next_ = n;
    to_main();
  }

  void wait(bool (*ready)(const void*), const void* arg, bool is_lock) noexcept {
    if (current_ < 0) {
      if (!stopping_ && !ready(arg)) record_failure("a wait outside the model's threads");
      return;
    }
    fiber& f = fibers_[current_];
    while (!stopping_ && !ready(arg)) {
      f.st = state::blocked;
      f.ready = ready;
      f.ready_arg = arg;
      f.lock_wait = is_lock;
      next_ = -1;
      to_main();
      f.st = state::runnable;
    }
  }

  bool stopping() const noexcept {
    return stopping_;
  }
  int current() const noexcept {
    return current_;
  }

  void record_failure(std::string message) {
    if (failure_.empty()) failure_ = std::move(message);
  }

  bool spurious() noexcept {
    if (cfg_.exhaustive || replaying_ || stopping_ || current_ < 0 || spurious_left_ == 0) {
      return false;
    }
    if (next_random() % 100 >= cfg_.spurious_cas_percent) return false;
    --spurious_left_;
    return true;
  }

  // A fiber's first frame. It never returns (a finished fiber is never resumed, its context is
  // made afresh for the next schedule), so it is not instrumented by TSan, and it switches out
  // itself instead of calling to_main(): TSan's shadow call stack of the fiber, which is reused
  // for every schedule, must be empty when the fiber ends.
  CORIO_MODEL_NO_TSAN static void entry(int index) {
    engine& e = *active;
#if defined(CORIO_MODEL_ASAN)
    __sanitizer_finish_switch_fiber(nullptr, &e.main_bottom_, &e.main_size_);
#endif
    fiber& f = e.run_body(index);
#if defined(CORIO_MODEL_ASAN)
    __sanitizer_start_switch_fiber(nullptr, e.main_bottom_, e.main_size_);  // frees its fake stack
#endif
#if defined(CORIO_MODEL_TSAN)
    __tsan_switch_to_fiber(e.main_tsan_, 0);
#endif
    swapcontext(&f.ctx, &e.main_ctx_);
    std::abort();
  }

  static inline engine* active = nullptr;

  ~engine() {
#if defined(CORIO_MODEL_TSAN)
    for (fiber& f : fibers_) {
      if (f.tsan != nullptr) __tsan_destroy_fiber(f.tsan);
    }
#endif
  }

 private:
  enum class state { runnable, blocked, done };
  struct fiber;

  fiber& run_body(int index) {
    fiber& f = fibers_[index];
    try {
      f.body();
    } catch (const std::exception& ex) {
      record_failure(std::string("a model thread threw: ") + ex.what());
    } catch (...) {
      record_failure("a model thread threw");
    }
    f.st = state::done;
    next_ = -1;
    return f;
  }

  struct fiber {
    ucontext_t ctx{};
    std::unique_ptr<char[]> stack;
    std::function<void()> body;
    state st = state::runnable;
    bool (*ready)(const void*) = nullptr;
    const void* ready_arg = nullptr;
    bool lock_wait = false;
    void* fake_stack = nullptr;  // ASan: the fiber's fake stack while it is switched out
    void* tsan = nullptr;
  };
  // One choice point with more than one runnable thread. Choosing options[k] costs a preemption
  // when k >= cost_from: at a yield, options[0] is the running thread and every other choice
  // costs one; after a block or an end, none does; at a spin, the others come first and cost
  // nothing, and only letting the spinner go on costs one.
  struct choice {
    std::uint8_t options[max_threads];
    std::uint8_t count;
    std::uint8_t chosen;
    std::uint8_t preemptions_before;
    std::uint8_t cost_from;
  };

  bool runnable(const fiber& f) const noexcept {
    if (f.st == state::runnable) return true;
    return f.st == state::blocked && (stopping_ || f.ready(f.ready_arg));
  }

  // `self` is the thread at a scheduling point (it can continue), or -1 when it blocked or ended;
  // `spinning`: self loops without progress until another thread acts (model::spin).
  int choose(int self, bool spinning = false) noexcept {
    choice c{};
    if (self >= 0 && !spinning) c.options[c.count++] = static_cast<std::uint8_t>(self);
    for (int i = 0; i < static_cast<int>(fibers_.size()); ++i) {
      if (i != self && runnable(fibers_[i])) c.options[c.count++] = static_cast<std::uint8_t>(i);
    }
    if (self >= 0 && spinning) {
      c.cost_from = c.count;
      c.options[c.count++] = static_cast<std::uint8_t>(self);
    } else {
      c.cost_from = self >= 0 ? 1 : c.count;
    }
    if (c.count == 0) return -1;
    // After quiescence nothing is explored: every thread just runs out in a fixed order.
    if (c.count == 1 || stopping_) return c.options[0];
    int pick;
    int index = 0;  // of pick in c.options; replay and random mode need it only for preemptions
    if (replaying_) {
      pick = c.options[0];
      if (forced_pos_ < forced_.size()) {
        pick = forced_[forced_pos_++];
        bool ok = false;
        for (int k = 0; k < c.count; ++k) ok |= c.options[k] == pick;
        if (!ok) {
          record_failure("CORIO_MODEL_SCHEDULE names a thread that cannot run there");
          pick = c.options[0];
        }
      }
    } else if (cfg_.exhaustive) {
      if (trail_pos_ < trail_.size()) {
        const choice& old = trail_[trail_pos_];
        bool same = old.count == c.count;
        for (int k = 0; same && k < c.count; ++k) same = old.options[k] == c.options[k];
        if (!same) record_failure("the test is not deterministic: a replayed prefix diverged");
        c.chosen = old.chosen;
      } else {
        c.preemptions_before = static_cast<std::uint8_t>(preemptions_);
        trail_.push_back(c);
      }
      ++trail_pos_;
      index = c.chosen < c.count ? c.chosen : 0;
      pick = c.options[index];
    } else if (spinning) {
      pick = c.options[next_random() % (c.count - 1)];  // a fair scheduler runs someone else
    } else if (self >= 0) {
      std::uint64_t r = next_random();
      pick = r % 100 < switch_percent_ ? c.options[1 + (r >> 8) % (c.count - 1)] : self;
    } else {
      pick = c.options[next_random() % c.count];
    }
    if (!cfg_.exhaustive || replaying_) {
      for (int k = 0; k < c.count; ++k) {
        if (c.options[k] == pick) index = k;
      }
    }
    if (index >= c.cost_from) ++preemptions_;
    schedule_ += static_cast<char>('0' + pick);
    return pick;
  }

  // Exhaustive: the next schedule changes the deepest choice that still has an alternative
  // within the preemption bound, and replays the prefix before it.
  bool backtrack() noexcept {
    while (!trail_.empty()) {
      choice& c = trail_.back();
      for (int alt = c.chosen + 1; alt < c.count; ++alt) {
        if (c.preemptions_before + (alt >= c.cost_from ? 1 : 0) <= cfg_.preemption_bound) {
          c.chosen = static_cast<std::uint8_t>(alt);
          return true;
        }
      }
      trail_.pop_back();
    }
    return false;
  }

  void run_one(const std::function<void(execution&)>& setup, std::uint64_t seed) {
    rng_ = splitmix(seed) | 1;
    static constexpr unsigned percents[] = {50, 20, 5, 1};
    switch_percent_ = percents[next_random() % 4];
    spurious_left_ = 4;
    steps_ = 0;
    preemptions_ = 0;
    trail_pos_ = 0;
    forced_pos_ = 0;
    stopping_ = false;
    abandoned_ = false;
    schedule_.clear();

    execution ex;
    setup(ex);
    if (ex.bodies_.size() > max_threads) throw std::logic_error("too many model threads");
#if defined(CORIO_MODEL_TSAN)
    for (std::size_t i = ex.bodies_.size(); i < fibers_.size(); ++i) {
      if (fibers_[i].tsan != nullptr) __tsan_destroy_fiber(fibers_[i].tsan);
    }
#endif
    fibers_.resize(ex.bodies_.size());
    for (std::size_t i = 0; i < fibers_.size(); ++i) {
      fiber& f = fibers_[i];
      if (!f.stack) f.stack = std::make_unique<char[]>(stack_size);
      f.body = std::move(ex.bodies_[i]);
      f.st = state::runnable;
      f.fake_stack = nullptr;
      make_context(f, static_cast<int>(i));
#if defined(CORIO_MODEL_TSAN)
      if (f.tsan == nullptr) f.tsan = __tsan_create_fiber(0);  // kept for every schedule
#endif
    }

    bool checked = false;
    int n = choose(-1);
    while (!abandoned_) {
      if (n < 0) {
        bool all_done = true;
        const fiber* lock_waiter = nullptr;
        for (const fiber& f : fibers_) {
          if (f.st != state::done) all_done = false;
          if (f.st == state::blocked && f.lock_wait) lock_waiter = &f;
        }
        if (lock_waiter != nullptr) {
          record_failure("deadlock: a thread waits for a mutex that nobody will unlock");
          break;
        }
        if (!checked) {
          checked = true;
          if (ex.check_) ex.check_();
        }
        if (all_done) break;
        stopping_ = true;
        n = choose(-1);
        if (n < 0) break;
      }
      switch_to(n);
      n = next_;
      if (n < 0) n = choose(-1);
    }

    // The state the bodies captured dies here; an abandoned fiber never touches it again.
    for (fiber& f : fibers_) f.body = nullptr;
  }

  // Apart from run_one: getcontext returns twice (formally), and GCC's -Wclobbered would flag
  // run_one's loop variables.
  [[gnu::noinline]] static void make_context(fiber& f, int index) noexcept {
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.get();
    f.ctx.uc_stack.ss_size = stack_size;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, reinterpret_cast<void (*)()>(&engine::entry), 1, index);
  }

  void switch_to(int index) noexcept {
    fiber& f = fibers_[index];
    current_ = index;
    next_ = -1;
#if defined(CORIO_MODEL_ASAN)
    __sanitizer_start_switch_fiber(&main_fake_, f.stack.get(), stack_size);
#endif
#if defined(CORIO_MODEL_TSAN)
    __tsan_switch_to_fiber(f.tsan, 0);
#endif
    swapcontext(&main_ctx_, &f.ctx);
#if defined(CORIO_MODEL_ASAN)
    __sanitizer_finish_switch_fiber(main_fake_, nullptr, nullptr);
#endif
    current_ = -1;
  }

  // A running fiber gives way (it continues here when chosen again; a finished one leaves from
  // entry() instead).
  void to_main() noexcept {
    fiber& f = fibers_[current_];
#if defined(CORIO_MODEL_ASAN)
    __sanitizer_start_switch_fiber(&f.fake_stack, main_bottom_,
                                   main_size_);  // keeps its fake stack
#endif
#if defined(CORIO_MODEL_TSAN)
    __tsan_switch_to_fiber(main_tsan_, 0);
#endif
    swapcontext(&f.ctx, &main_ctx_);
#if defined(CORIO_MODEL_ASAN)
    __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
  }

  // Leaves a fiber that cannot finish (livelock) for good; the schedule ends as a failure.
  [[noreturn]] void abandon() noexcept {
    abandoned_ = true;
    next_ = -1;
    to_main();
    std::abort();
  }

  std::uint64_t next_random() noexcept {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  std::string describe_failure(std::uint64_t seed) const {
    std::string s = std::string(cfg_.name) + ": " + failure_ + "\n  after " +
                    std::to_string(steps_) +
                    " scheduling points; schedule (thread ids at each "
                    "choice):\n  " +
                    schedule_ + "\n  replay: ";
    if (cfg_.exhaustive || replaying_) {
      s += "CORIO_MODEL_SCHEDULE=" + schedule_;
    } else {
      s += "CORIO_MODEL_SEED=" + std::to_string(seed);
    }
    return s + " <test binary> -tc='<this test case>'";
  }

  config cfg_;
  std::vector<fiber> fibers_;
  ucontext_t main_ctx_{};
#if defined(CORIO_MODEL_ASAN)
  void* main_fake_ = nullptr;  // the main stack's fake stack while a fiber runs
  const void* main_bottom_ = nullptr;
  std::size_t main_size_ = 0;
#endif
#if defined(CORIO_MODEL_TSAN)
  void* main_tsan_ = nullptr;
#endif
  int current_ = -1;
  int next_ = -1;
  std::vector<choice> trail_;
  std::size_t trail_pos_ = 0;
  std::vector<int> forced_;
  std::size_t forced_pos_ = 0;
  bool replaying_ = false;
  std::string schedule_;
  std::uint64_t rng_ = 1;
  unsigned switch_percent_ = 50;
  unsigned spurious_left_ = 0;
  std::uint64_t steps_ = 0;
  int preemptions_ = 0;
  bool stopping_ = false;
  bool abandoned_ = false;
  std::string failure_;
};

result explore(const config& cfg, const std::function<void(execution&)>& setup) {
  engine e(cfg);
  engine* outer = engine::active;
  engine::active = &e;
  auto start = std::chrono::steady_clock::now();
  result r = e.run(setup);
  engine::active = outer;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("model %s: %llu schedules%s, longest %llu steps, %.2f s%s\n", cfg.name,
              static_cast<unsigned long long>(r.schedules),
              r.replay             ? " (replay)"
              : !cfg.exhaustive    ? ""
              : !r.failure.empty() ? " (stopped at the first failure)"
              : r.exhausted        ? " (all within the bound)"
                                   : " (schedule cap reached)",
              static_cast<unsigned long long>(r.longest), secs,
              r.failure.empty() ? "" : ": FAILED");
  std::fflush(stdout);
  return r;
}

void yield() noexcept {
  if (engine::active != nullptr) engine::active->yield_point(false);
}

void spin() noexcept {
  if (engine::active != nullptr) engine::active->yield_point(true);
}

void wait_until(bool (*ready)(const void*), const void* arg, bool is_lock) noexcept {
  if (engine::active != nullptr) engine::active->wait(ready, arg, is_lock);
}

bool stopping() noexcept {
  return engine::active != nullptr && engine::active->stopping();
}

void fail(std::string message) {
  if (engine::active != nullptr) {
    engine::active->record_failure(std::move(message));
  } else {
    std::fprintf(stderr, "model failure outside explore(): %s\n", message.c_str());
    std::abort();
  }
}

bool spurious_failure() noexcept {
  return engine::active != nullptr && engine::active->spurious();
}

int current_thread() noexcept {
  return engine::active != nullptr ? engine::active->current() : -1;
}

}  // namespace corio::model
