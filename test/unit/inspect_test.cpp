// runtime::tasks() and dump_tasks(): live task inspection with async backtraces; and the
// formatters of the diagnostic value types (task_info, errors, results, join handles).
// Invariants: every live task is listed once, with its id, name and state; a waiting task says
// what it waits for (sleep, read on an fd, accept, channel receive, mutex lock, join) and since
// when; its backtrace lists its nested coroutines innermost first, each at the co_await it is
// suspended in; a snapshot can be taken from a task or from any other thread while every worker
// keeps running tasks, without a data race (the TSan build) and without stalling the runtime for
// good; outside block_on it lists only the tasks runtime::spawn queued.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/channel.hpp>
#include <corio/corio.hpp>
#include <corio/net/tcp.hpp>
#include <corio/sync/mutex.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using corio::task;
using corio::task_info;
using corio::task_state;
using namespace std::chrono_literals;

namespace {

// Three nested coroutines; the innermost sleeps. The lines of their co_awaits are recorded so
// that the backtrace can be checked against them.
unsigned inner_line = 0, middle_line = 0, outer_line = 0;

task<> nested_inner() {
  inner_line = __LINE__ + 1;
  co_await corio::sleep_for(30s);
}
task<> nested_middle() {
  middle_line = __LINE__ + 1;
  co_await nested_inner();
}
task<> nested_outer() {
  outer_line = __LINE__ + 1;
  co_await nested_middle();
}

task<> named_reader(int fd) {
  corio::set_task_name("pipe reader");
  std::array<std::byte, 16> buf{};
  auto in = corio::fd_stream::borrow(fd);
  (void)co_await in.read(buf);
}

task<> acceptor(corio::net::tcp_listener& l) {
  auto incoming = l.incoming();
  (void)co_await incoming.next();
}

task<> receiver(corio::receiver<int> rx) {
  (void)co_await rx.recv();
}

task<> locker(corio::mutex& m) {
  auto g = co_await m.lock();
}

task<> joiner(corio::join_handle<void>& h) {
  co_await h;
}

const task_info* find(const std::vector<task_info>& all, std::uint64_t id) {
  for (const auto& t : all) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

// Waits until every task in `ids` is waiting (they start on any worker, in any order).
task<std::vector<task_info>> until_waiting(const std::vector<std::uint64_t>& ids) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    std::vector<task_info> all = corio::current_tasks();
    bool ready = true;
    for (auto id : ids) {
      const task_info* t = find(all, id);
      if (t == nullptr || t->state != task_state::waiting) ready = false;
    }
    if (ready) co_return all;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    co_await corio::sleep_for(1ms);
  }
}

task<> busy(std::atomic<bool>& done, std::atomic<long>& progress) {
  while (!done.load()) {
    progress.fetch_add(1);
    co_await corio::yield_now();
    if (progress.load() % 64 == 0) co_await corio::sleep_for(100us);
  }
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The text form: a stats line, then one header line per task and one line per frame.
// One header line of the dump: `task ID "NAME" STATE[ SECS s on worker W: WAIT| on worker W]`.
// Parsed by hand: GCC 12's <regex> trips -Wmaybe-uninitialized in the ASan build.
struct header_line {
  std::uint64_t id = 0;
  std::string name, state, wait;
  double secs = 0;
};
bool parse_header(const std::string& l, header_line& h) {
  if (l.rfind("task ", 0) != 0) return false;
  std::size_t id_end = l.find(" \"", 5);
  if (id_end == std::string::npos || id_end == 5) return false;
  if (l.find_first_not_of("0123456789", 5) != id_end) return false;
  h.id = std::stoull(l.substr(5, id_end - 5));
  std::size_t name_end = l.find('"', id_end + 2);
  if (name_end == std::string::npos || name_end + 1 >= l.size() || l[name_end + 1] != ' ') {
    return false;
  }
  h.name = l.substr(id_end + 2, name_end - id_end - 2);
  std::size_t state_end = l.find(' ', name_end + 2);
  h.state = l.substr(name_end + 2,
                     state_end == std::string::npos ? std::string::npos : state_end - name_end - 2);
  if (h.state == "waiting") {
    constexpr std::string_view on = " s on worker ";
    std::size_t secs_end = l.find(on, state_end + 1);
    std::size_t colon = l.find(": ", secs_end == std::string::npos ? 0 : secs_end);
    if (secs_end == std::string::npos || colon == std::string::npos) return false;
    h.secs = std::stod(l.substr(state_end + 1, secs_end - state_end - 1));
    h.wait = l.substr(colon + 2);
    return true;
  }
  if (h.state == "running") return l.compare(state_end, 11, " on worker ") == 0;
  return state_end == std::string::npos;
}

// One frame line: `    #I FUNCTION at FILE:LINE`.
bool parse_frame(const std::string& l, unsigned& index, std::string& function) {
  if (l.rfind("    #", 0) != 0) return false;
  std::size_t sp = l.find(' ', 5);
  std::size_t at = l.find(" at ", sp == std::string::npos ? 0 : sp);
  std::size_t colon = l.rfind(':');
  if (sp == std::string::npos || at == std::string::npos || colon == std::string::npos ||
      colon < at || colon + 1 >= l.size() ||
      l.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    return false;
  }
  index = static_cast<unsigned>(std::stoul(l.substr(5, sp - 5)));
  function = l.substr(sp + 1, at - sp - 1);
  return true;
}

// The text form: a stats line, then one header line per task and one line per frame.
void check_dump(const std::string& dump, std::uint64_t sleeper_id, std::size_t task_count) {
  INFO(dump);
  std::istringstream lines(dump);
  std::string line;
  std::getline(lines, line);
  CHECK(line.rfind("corio: ", 0) == 0);
  std::size_t tasks = 0;
  int frames_of_sleeper = 0;
  std::uint64_t current = 0;
  const std::array<std::string, 3> expect{"nested_inner", "nested_middle", "nested_outer"};
  while (std::getline(lines, line)) {
    header_line h;
    unsigned index = 0;
    std::string function;
    if (parse_header(line, h)) {
      ++tasks;
      current = h.id;
      if (current == sleeper_id) {
        CHECK(h.state == "waiting");
        CHECK(h.secs >= 0.015);
        CHECK(h.wait.rfind("sleep", 0) == 0);
      }
    } else if (parse_frame(line, index, function)) {
      if (current == sleeper_id) {
        REQUIRE(index < 3);
        CHECK(function == expect[index]);
        ++frames_of_sleeper;
      }
    } else {
      FAIL_CHECK("unparsed line: " << line);
    }
  }
  CHECK(tasks == task_count);
  CHECK(frames_of_sleeper == 3);
}

}  // namespace

TEST_SUITE("inspect") {
  TEST_CASE("tasks() describes tasks blocked in sleep, read, accept, receive, lock and join") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      int p[2];
      REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
      corio::runtime rt{corio::runtime_options{.workers = workers}};
      // The text form is parsed outside the coroutine.
      std::string dump;
      std::uint64_t sleeper_id = 0;
      std::size_t task_count = 0;
      rt.block_on([](int rfd, std::size_t workers, std::string& dump, std::uint64_t& sleeper_id,
                     std::size_t& task_count) -> task<> {
        auto listener = corio::net::tcp_listener::bind("127.0.0.1:0");
        auto [tx, rx] = corio::make_channel<int>(1);
        corio::mutex m;
        auto held = co_await m.lock();

        auto sleeper = corio::spawn(nested_outer());
        auto reader = corio::spawn(named_reader(rfd));
        auto acc = corio::spawn(acceptor(listener));
        auto rcv = corio::spawn(receiver(std::move(rx)));
        auto lck = corio::spawn(locker(m));
        auto jn = corio::spawn(joiner(sleeper));
        std::vector<std::uint64_t> ids{sleeper.id(), reader.id(), acc.id(),
                                       rcv.id(),     lck.id(),    jn.id()};
        std::vector<task_info> all = co_await until_waiting(ids);

        // The caller itself.
        CHECK(std::count_if(all.begin(), all.end(), [](const task_info& t) {
                return t.state == task_state::running;
              }) == 1);
        CHECK(all.size() == 7);

        const task_info* s = find(all, sleeper.id());
        REQUIRE(s != nullptr);
        CHECK(s->name == "nested_outer");
        CHECK(s->wait.rfind("sleep (due in ", 0) == 0);
        REQUIRE(s->backtrace.size() == 3);
        CHECK(s->backtrace[0].function == "nested_inner");
        CHECK(s->backtrace[0].line == inner_line);
        CHECK(s->backtrace[1].function == "nested_middle");
        CHECK(s->backtrace[1].line == middle_line);
        CHECK(s->backtrace[2].function == "nested_outer");
        CHECK(s->backtrace[2].line == outer_line);
        for (const auto& f : s->backtrace) CHECK(ends_with(f.file, "inspect_test.cpp"));
        CHECK(s->worker >= 0);
        CHECK(s->worker < static_cast<int>(workers));

        const task_info* r = find(all, reader.id());
        REQUIRE(r != nullptr);
        CHECK(r->name == "pipe reader");
        CHECK(r->fd == rfd);
        CHECK(r->wait.find(fmt::format("on fd {}", rfd)) != std::string::npos);
        REQUIRE(r->backtrace.size() == 1);
        CHECK(r->backtrace[0].function == "named_reader");

        const task_info* a = find(all, acc.id());
        REQUIRE(a != nullptr);
        CHECK(a->wait == fmt::format("accept on fd {}", listener.native_handle()));
        CHECK(a->fd == listener.native_handle());

        const task_info* c = find(all, rcv.id());
        REQUIRE(c != nullptr);
        CHECK(c->wait == "channel receive");

        const task_info* l = find(all, lck.id());
        REQUIRE(l != nullptr);
        CHECK(l->wait == "mutex lock");

        const task_info* j = find(all, jn.id());
        REQUIRE(j != nullptr);
        CHECK(j->wait == fmt::format("join task {}", sleeper.id()));

        // The text form: one header line per task, then its frames.
        co_await corio::sleep_for(20ms);  // so that the waits have lasted a measurable while
        dump = corio::dump_current_tasks();
        sleeper_id = sleeper.id();
        task_count = all.size();
        held.unlock();
        co_await lck;
        // main returns: shutdown destroys the other waiters.
      }(p[0], workers, dump, sleeper_id, task_count));
      ::close(p[0]);
      ::close(p[1]);
      check_dump(dump, sleeper_id, task_count);
    }
  }

  TEST_CASE("a thread outside the runtime takes snapshots while every worker is busy") {
    // Busy tasks on every worker; another thread snapshots in a loop. Each snapshot must see every
    // long-lived task exactly once, and the workers must go on (the counter keeps rising).
    corio::runtime rt{corio::runtime_options{.workers = 2}};
    std::atomic<bool> done{false};
    std::atomic<long> progress{0};
    std::atomic<int> snapshots{0};
    std::vector<std::uint64_t> long_lived;
    std::atomic<bool> started{false};
    std::string failure;  // written by the inspector thread, read after it was joined
    std::thread inspector;
    rt.block_on([&]() -> task<> {
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 8; ++i) {
        hs.push_back(corio::spawn(busy(done, progress)));
        long_lived.push_back(hs.back().id());
      }
      inspector = std::thread([&] {
        while (!started.load()) std::this_thread::yield();
        for (int i = 0; i < corio::test::scaled(200); ++i) {
          long before = progress.load();
          auto all = rt.tasks();
          for (auto id : long_lived) {
            int seen = 0;
            for (const auto& t : all) seen += t.id == id;
            if (seen != 1) {
              failure = fmt::format("task {} seen {} times", id, seen);
              done = true;
              return;
            }
          }
          (void)rt.dump_tasks();
          snapshots.fetch_add(1);
          // The workers resume between snapshots.
          auto until = std::chrono::steady_clock::now() + 5s;
          while (progress.load() == before && std::chrono::steady_clock::now() < until) {
            std::this_thread::yield();
          }
          if (progress.load() == before) {
            failure = "no progress after a snapshot";
            break;
          }
        }
        done = true;
      });
      started = true;
      for (auto& h : hs) co_await h;
    }());
    inspector.join();
    CHECK(failure == "");
    CHECK(snapshots.load() == corio::test::scaled(200));
  }

  TEST_CASE(
      "outside block_on, tasks() lists what runtime::spawn queued; off a worker, "
      "current_tasks() throws") {
    corio::runtime rt{corio::runtime_options{.workers = 1}};
    auto h = rt.spawn([]() -> task<int> { co_return 5; }());
    auto all = rt.tasks();
    REQUIRE(all.size() == 1);
    CHECK(all[0].id == h.id());
    CHECK(all[0].state == task_state::not_started);
    CHECK_THROWS_AS((void)corio::current_tasks(), std::logic_error);
    CHECK_THROWS_AS(corio::set_task_name("x"), std::logic_error);
    CHECK(rt.block_on([](corio::join_handle<int>& h) -> task<int> { co_return co_await h; }(h)) ==
          5);
    CHECK(rt.tasks().empty());
  }

  TEST_CASE("formatters: task_state and task_info print as to_string") {
    task_info t;
    t.id = 7;
    t.name = "n";
    t.state = task_state::waiting;
    t.wait = "sleep (due in 3 ms)";
    t.waited = 1500ms;
    t.worker = 1;
    t.backtrace.push_back({"f", "a.cpp", 12});
    std::string expect =
        "task 7 \"n\" waiting 1.500 s on worker 1: sleep (due in 3 ms)\n"
        "    #0 f at a.cpp:12\n";
    CHECK(corio::to_string(t) == expect);
    CHECK(fmt::format("{}", t) == expect);
    std::ostringstream os;
    os << t << task_state::not_started;
    CHECK(os.str() == expect + "not_started");
  }

  TEST_CASE("formatters: errc, result<T> and join_handle print the same through fmt and <<") {
    CHECK(fmt::format("{}", corio::errc::unexpected_eof) == "unexpected end of stream");
    std::ostringstream os;
    os << corio::errc::stream_closed;
    CHECK(os.str() == "the stream was closed while the operation was in flight");
    corio::result<int> ok = 42;
    CHECK(fmt::format("{}", ok) == "42");
    corio::result<int> bad = std::error_code(ECONNRESET, std::generic_category());
    CHECK(fmt::format("{}", bad) ==
          fmt::format("error: generic:{} ({})", ECONNRESET, std::strerror(ECONNRESET)));
    corio::result<void> done;
    CHECK(fmt::format("{}", done) == "ok");
    corio::result<std::size_t> eof = corio::make_error_code(corio::errc::unexpected_eof);
    CHECK(fmt::format("{}", eof) == "error: corio:1 (unexpected end of stream)");

    corio::runtime rt{corio::runtime_options{.workers = 1}};
    auto h = rt.spawn([]() -> task<> { co_return; }());
    std::ostringstream hs;
    hs << h;
    CHECK(hs.str() == fmt::format("task {}", h.id()));
    CHECK(fmt::format("{}", h) == hs.str());
    rt.block_on([](corio::join_handle<void>& h) -> task<> { co_await h; }(h));
    CHECK(fmt::format("{}", h) == "task (none)");
  }
}
