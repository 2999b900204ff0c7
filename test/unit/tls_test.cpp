// corio::tls: corio client against corio server and against `openssl s_server` over loopback,
// certificate checks, clean and truncated ends, timeouts, cancellation and garbage handshakes.
// (`openssl s_client` against the https_server sample is in test/integration/https_samples.sh.) The
// certificates are made at test time with the `openssl` command in a temporary directory (no key is
// committed). Invariants: every byte arrives once and in order; a refused certificate or a broken
// handshake is a tls::error naming the reason; nothing leaks (the per-test fd and frame checks).
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>
#include <corio/tls.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using namespace corio::net;
using namespace std::chrono_literals;
namespace tls = corio::tls;
using corio::test::pattern;

namespace {

// Throw-away certificates: a CA; a server certificate for localhost and 127.0.0.1 signed by it;
// an expired one; one for another host; a self-signed one; a PKCS#12 bundle.
struct certs {
  std::string dir;
  std::string path(const char* name) const { return dir + "/" + name; }

  certs() {
    char tmpl[] = "/tmp/corio-tls-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    dir = tmpl;
    std::string script = fmt::format(
        R"((set -e; cd '{}'
key() {{ openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }}
key ca.key
openssl req -x509 -key ca.key -days 2 -subj /CN=corio-test-ca -out ca.pem
sign() {{ # name CN SAN days
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'subjectAltName=%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$4" \
    -extfile "$1.ext" -out "$1.pem"
}}
sign server localhost DNS:localhost,IP:127.0.0.1 2
sign expired localhost DNS:localhost,IP:127.0.0.1 -1
sign other other.example DNS:other.example 2
key self.key
openssl req -x509 -key self.key -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -out self.pem
openssl pkcs12 -export -inkey server.key -in server.pem -certfile ca.pem -passout pass:secret \
  -out server.p12
) >/dev/null 2>&1)",
        dir);
    if (std::system(script.c_str()) != 0) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      throw std::runtime_error("making test certificates with openssl failed in " + dir);
    }
  }
  ~certs() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const certs& the_certs() {
  static certs c;
  return c;
}

tls::context server_ctx(const char* name = "server") {
  const certs& c = the_certs();
  return tls::context::server_from_pem(c.path(name) + std::string(".pem"),
                                       c.path(name) + std::string(".key"));
}

tls::context trusting_client() {
  return tls::context::client({.verify = true, .ca_file = the_certs().path("ca.pem")});
}

// Accepts one connection, completes the handshake and echoes until close_notify, then answers
// with its own close_notify.
task<> echo_one(tcp_listener& l, tls::context ctx) {
  auto a = co_await l.accept();
  auto s = co_await tls::accept(ctx, std::move(a.stream));
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    std::size_t n = co_await s.read(buf);
    if (n == 0) break;
    co_await s.write_all(std::span(buf).first(n));
  }
  co_await s.shutdown();
}

// The handshake of one accepted connection; returns its error message ("" when it succeeded).
task<std::string> accept_outcome(tcp_listener& l, tls::context ctx) {
  auto a = co_await l.accept();
  try {
    auto s = co_await tls::accept(ctx, std::move(a.stream));
    // The client may refuse after the server's last flight: wait for its alert or its end.
    std::array<std::byte, 64> buf;
    (void)co_await s.read(buf);
    co_return std::string();
  } catch (const std::system_error& e) {
    co_return std::string(e.what());
  }
}

// Connects with `ctx` to a server using `server`, as `host`; returns the client's error ("" if
// the handshake succeeded).
std::string client_outcome(tls::context ctx, const char* server, std::string host) {
  return corio::run(
      [](tls::context ctx, const char* server, std::string host) -> task<std::string> {
        auto l = tcp_listener::bind("127.0.0.1:0");
        auto srv = corio::spawn(accept_outcome(l, server_ctx(server)));
        std::string err;
        try {
          auto tcp = co_await tcp_stream::connect(l.local_address());
          auto s = co_await tls::connect(ctx, std::move(tcp), host);
          co_await s.shutdown();
        } catch (const tls::error& e) {
          err = e.what();
          CHECK(e.code().value() == EPROTO);
        }
        std::string server_err = co_await srv;
        if (!err.empty()) CHECK(!server_err.empty());  // the server learnt of the refusal
        co_return err;
      }(std::move(ctx), server, std::move(host)));
}

// `openssl s_server` with certificate `name`, on a free loopback port, for one test: with
// `mode` (default -quiet -www), stdin from `stdin_fd` (else /dev/null) and stdout into
// `out_path`.
class s_server {
 public:
  explicit s_server(const char* name, std::vector<std::string> mode = {"-quiet", "-www"},
                    int stdin_fd = -1, std::string out_path = "/dev/null") {
    {
      auto probe = tcp_listener::bind("127.0.0.1:0");  // a free port, released at once
      port_ = probe.local_address().port();
    }
    const certs& c = the_certs();
    std::string cert = c.path(name) + std::string(".pem"), key = c.path(name) + std::string(".key");
    std::string port = std::to_string(port_);
    std::vector<std::string> args{"openssl", "s_server"};
    args.insert(args.end(), mode.begin(), mode.end());
    for (const std::string& a :
         {std::string("-accept"), port, std::string("-cert"), cert, std::string("-key"), key}) {
      args.push_back(a);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (stdin_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
    } else {
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid_, "openssl", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "spawning openssl s_server");
  }
  ~s_server() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// Connects to 127.0.0.1:port, retrying while a server starts (up to 5 s).
task<tcp_stream> connect_retrying(std::uint16_t port) {
  auto addr = socket_address::parse(fmt::format("127.0.0.1:{}", port));
  for (int i = 0;; ++i) {
    auto r = co_await tcp_stream::connect(addr).nothrow();
    if (r) co_return std::move(*r);
    if (i == 100) throw std::system_error(r.error(), "the server did not start");
    co_await corio::sleep_for(50ms);
  }
}

// Connects to s_server (retrying while it starts, up to 5 s) and fetches its -www page over
// TLS; returns the page, or the client's error message.
task<std::string> fetch_from_s_server(std::uint16_t port, tls::context ctx, std::string host) {
  tcp_stream tcp = co_await connect_retrying(port);
  try {
    auto s = co_await tls::connect(ctx, std::move(tcp), host);
    co_await s.write_all(std::string_view("GET / HTTP/1.0\r\n\r\n"));
    std::string page;
    std::array<std::byte, 4096> buf;
    for (;;) {
      std::size_t n = 0;
      try {
        n = co_await s.read(buf);
      } catch (const std::system_error& e) {
        if (e.code() == corio::errc::unexpected_eof) break;  // s_server -www may just close
        throw;
      }
      if (n == 0) break;
      page.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return page;
  } catch (const tls::error& e) {
    co_return std::string("error: ") + e.what();
  }
}

}  // namespace

TEST_SUITE("tls") {
  TEST_CASE(
      "a corio client against openssl s_server: a page over TLS; expired and wrong-host "
      "certificates are refused") {
    {
      s_server srv("server");
      std::string page =
          corio::run(fetch_from_s_server(srv.port(), trusting_client(), "localhost"));
      CHECK(page.find("HTTP/1.0 200 ok") != std::string::npos);
      CHECK(page.find("TLSv1.3") != std::string::npos);  // s_server reports the session
    }
    {
      s_server srv("expired");
      std::string page =
          corio::run(fetch_from_s_server(srv.port(), trusting_client(), "localhost"));
      CHECK(page.find("certificate has expired") != std::string::npos);
    }
    {
      s_server srv("server");
      std::string page =
          corio::run(fetch_from_s_server(srv.port(), trusting_client(), "wrong.example"));
      CHECK(page.find("hostname mismatch") != std::string::npos);
    }
  }

  TEST_CASE("echo of 1 byte to 16 MiB, reader and writer tasks concurrent, 1 and 2 workers") {
    for (std::size_t workers : {1u, 2u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        auto l = tcp_listener::bind("127.0.0.1:0");
        for (std::size_t size : {std::size_t{1}, std::size_t{16 * 1024 + 1}, std::size_t{1} << 20,
                                 std::size_t{16} << 20}) {
          auto server = corio::spawn(echo_one(l, server_ctx()));
          auto tcp = co_await tcp_stream::connect(l.local_address());
          auto s = co_await tls::connect(trusting_client(), std::move(tcp), "localhost");
          CHECK(s.version() == "TLSv1.3");
          std::vector<std::byte> out = pattern(size, static_cast<unsigned>(size)), in(size);
          // The writer runs as its own task (maybe on the other worker) while this one reads.
          auto writer = corio::spawn([](tls::stream& s, std::vector<std::byte>& out) -> task<> {
            co_await s.write_all(out);
            co_await s.shutdown();
          }(s, out));
          std::size_t got = 0;
          while (got < size) {
            std::size_t n = co_await s.read(std::span(in).subspan(got));
            REQUIRE(n > 0);
            got += n;
          }
          co_await writer;
          CHECK(in == out);
          std::array<std::byte, 16> extra;
          CHECK(co_await s.read(extra) == 0);  // the server's close_notify
          co_await server;
        }
      }());
    }
  }

  TEST_CASE("an end without close_notify is a truncation error, not an end of stream") {
    corio::run([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn([](tcp_listener& l) -> task<> {
        auto a = co_await l.accept();
        auto s = co_await tls::accept(server_ctx(), std::move(a.stream));
        co_await s.write_all(std::string_view("partial"));
        co_await s.close();  // no close_notify
      }(l));
      auto tcp = co_await tcp_stream::connect(l.local_address());
      auto s = co_await tls::connect(trusting_client(), std::move(tcp), "127.0.0.1");
      std::array<std::byte, 64> buf;
      std::size_t n = co_await s.read(buf);
      CHECK(n == 7);
      bool truncated = false;
      try {
        (void)co_await s.read(buf);
      } catch (const std::system_error& e) {
        truncated = e.code() == corio::errc::unexpected_eof;
        CHECK(std::string(e.what()).find("close_notify") != std::string::npos);
      }
      CHECK(truncated);
      co_await server;
    }());
  }

  TEST_CASE("the client refuses expired, wrong-host and untrusted certificates, saying why") {
    std::string e = client_outcome(trusting_client(), "expired", "localhost");
    CHECK(e.find("certificate has expired") != std::string::npos);
    e = client_outcome(trusting_client(), "other", "localhost");
    CHECK(e.find("hostname mismatch") != std::string::npos);
    e = client_outcome(trusting_client(), "server", "other.example");
    CHECK(e.find("hostname mismatch") != std::string::npos);
    e = client_outcome(trusting_client(), "self", "localhost");
    CHECK(e.find("self-signed certificate") != std::string::npos);
    // The system trust store does not know the test CA.
    e = client_outcome(tls::context::client(), "server", "localhost");
    CHECK(e.find("unable to get local issuer certificate") != std::string::npos);
    // The certificate's IP address is checked for an IP literal.
    CHECK(client_outcome(trusting_client(), "server", "127.0.0.1").empty());
    CHECK(client_outcome(trusting_client(), "server", "localhost").empty());
    // Verification off: anything goes (for tests only).
    CHECK(client_outcome(tls::context::client({.verify = false}), "expired", "x").empty());
  }

  TEST_CASE("a handshake with a silent server times out and leaves nothing behind") {
    corio::run([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto tcp = co_await tcp_stream::connect(l.local_address());  // the backlog accepts it
      auto start = std::chrono::steady_clock::now();
      CHECK_THROWS_AS(co_await corio::timeout(
                          200ms, tls::connect(trusting_client(), std::move(tcp), "localhost")),
                      corio::timed_out);
      CHECK(std::chrono::steady_clock::now() - start < 5s);
    }());
  }

  TEST_CASE("cancelling a handshake and a read") {
    corio::run([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto tcp = co_await tcp_stream::connect(l.local_address());
      auto h = corio::spawn(tls::connect(trusting_client(), std::move(tcp), "localhost"));
      co_await corio::sleep_for(20ms);
      h.cancel();
      CHECK_THROWS_AS(co_await h, corio::operation_cancelled);

      // A read cancelled while waiting leaves the stream usable. (A listener of its own: the
      // first one still holds the abandoned connection in its backlog.)
      auto l2 = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn([](tcp_listener& l) -> task<> {
        auto a = co_await l.accept();
        auto s = co_await tls::accept(server_ctx(), std::move(a.stream));
        std::array<std::byte, 8> buf;
        std::size_t n = co_await s.read(buf);  // "go"
        CHECK(n == 2);
        co_await s.write_all(std::string_view("late"));
        co_await s.shutdown();
      }(l2));
      auto tcp2 = co_await tcp_stream::connect(l2.local_address());
      auto s = co_await tls::connect(trusting_client(), std::move(tcp2), "localhost");
      std::array<std::byte, 8> buf;
      CHECK_THROWS_AS(co_await corio::timeout(50ms, s.read(buf)), corio::timed_out);
      co_await s.write_all(std::string_view("go"));
      std::size_t n = co_await s.read(buf);
      CHECK(std::string_view(reinterpret_cast<const char*>(buf.data()), n) == "late");
      co_await server;
    }());
  }

  TEST_CASE("garbage instead of a ClientHello is a tls::error on the server") {
    corio::run([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn(accept_outcome(l, server_ctx()));
      auto tcp = co_await tcp_stream::connect(l.local_address());
      co_await tcp.write_all(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      std::string err = co_await server;
      CHECK(err.find("TLS handshake") != std::string::npos);
      CHECK(err.find("127.0.0.1") != std::string::npos);
    }());
  }

  TEST_CASE("a peer that disconnects mid-handshake ends the handshake with an error") {
    corio::run([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn(accept_outcome(l, server_ctx()));
      {
        auto tcp = co_await tcp_stream::connect(l.local_address());
        co_await tcp.close();
      }
      std::string err = co_await server;
      CHECK(err.find("without close_notify") != std::string::npos);
    }());
  }

  TEST_CASE("server contexts: missing files, a mismatched key, PKCS#12 and its password") {
    const certs& c = the_certs();
    try {
      (void)tls::context::server_from_pem(c.path("missing.pem"), c.path("server.key"));
      FAIL("no error for a missing certificate");
    } catch (const tls::error& e) {
      CHECK(e.code().value() == ENOENT);
      CHECK(std::string(e.what()).find("missing.pem") != std::string::npos);
    }
    try {
      (void)tls::context::server_from_pem(c.path("server.pem"), c.path("other.key"));
      FAIL("no error for a key of another certificate");
    } catch (const tls::error& e) {
      CHECK(std::string(e.what()).find("mismatch") != std::string::npos);
    }
    CHECK_THROWS_AS(tls::context::server_from_pem(c.path("ca.key"), c.path("server.key")),
                    tls::error);
    CHECK_THROWS_AS(tls::context::server_from_pkcs12(c.path("server.p12"), "wrong"), tls::error);
    auto ctx = tls::context::server_from_pkcs12(c.path("server.p12"), "secret");
    CHECK(ctx.native_handle() != nullptr);
    CHECK_THROWS_AS(tls::context::client({.ca_file = c.path("missing.pem")}), tls::error);
  }

  TEST_CASE("ALPN: the server picks the first of its protocols that the client offers") {
    corio::run([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn([](tcp_listener& l) -> task<std::string> {
        auto ctx = server_ctx();
        ctx.set_alpn({"h2", "http/1.1"});
        auto a = co_await l.accept();
        auto s = co_await tls::accept(ctx, std::move(a.stream));
        co_await s.shutdown();
        co_return s.alpn();
      }(l));
      auto ctx = trusting_client();
      ctx.set_alpn({"http/1.1"});
      auto tcp = co_await tcp_stream::connect(l.local_address());
      auto s = co_await tls::connect(ctx, std::move(tcp), "localhost");
      CHECK(s.alpn() == "http/1.1");
      CHECK(co_await server == "http/1.1");
    }());
  }

  TEST_CASE("many concurrent TLS connections on 2 workers") {
    corio::runtime rt{{.workers = 2}};
    int ok = rt.block_on([]() -> task<int> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn([](tcp_listener& l) -> task<> {
        auto ctx = server_ctx();
        auto in = l.incoming();
        while (auto c = co_await in.next()) {
          corio::spawn([](tls::context ctx, tcp_stream t) -> task<> {
            auto s = co_await tls::accept(ctx, std::move(t));
            std::array<std::byte, 1024> buf;
            for (;;) {
              std::size_t n = co_await s.read(buf);
              if (n == 0) break;
              co_await s.write_all(std::span(buf).first(n));
            }
            co_await s.shutdown();
          }(ctx, std::move(c->stream)))
              .detach();
        }
      }(l));
      std::vector<corio::join_handle<bool>> clients;
      for (int i = 0; i < 64; ++i) {
        clients.push_back(corio::spawn([](socket_address a, int i) -> task<bool> {
          auto tcp = co_await tcp_stream::connect(a);
          auto s = co_await tls::connect(trusting_client(), std::move(tcp), "localhost");
          auto out = pattern(3000, static_cast<unsigned>(i));
          std::vector<std::byte> in(out.size());
          co_await s.write_all(out);
          std::size_t got = 0;
          while (got < in.size()) got += co_await s.read(std::span(in).subspan(got));
          co_await s.shutdown();
          co_return in == out;
        }(l.local_address(), i)));
      }
      int good = 0;
      for (auto& c : clients) good += (co_await c) ? 1 : 0;
      server.cancel();
      try {
        co_await server;
      } catch (const corio::operation_cancelled&) {
      }
      co_return good;
    }());
    CHECK(ok == 64);
  }

  TEST_CASE("16 MiB each way through 4 KiB socket buffers (T34d)") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          // Loopback's MSS is 64 KiB: with windows of a few KiB, Linux would hold back window
          // updates (silly-window avoidance) and the transfer would crawl on zero-window probes.
          // A 1 KiB MSS, announced by the listener, keeps segments smaller than the windows.
          int mss = 1024;
          REQUIRE(::setsockopt(l.native_handle(), IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss) == 0);
          auto server = corio::spawn([](tcp_listener& l) -> task<> {
            auto a = co_await l.accept();
            corio::test::set_buffers(a.stream.native_handle(), 4096);
            auto s = co_await tls::accept(server_ctx(), std::move(a.stream));
            std::vector<std::byte> buf(64 * 1024);
            while (std::size_t n = co_await s.read(buf)) {
              co_await s.write_all(std::span(buf).first(n));
            }
            co_await s.shutdown();
          }(l));
          auto tcp = co_await tcp_stream::connect(l.local_address());
          corio::test::set_buffers(tcp.native_handle(), 4096);
          auto s = co_await tls::connect(trusting_client(), std::move(tcp), "localhost");
          std::vector<std::byte> out = pattern(std::size_t{16} << 20, 34), in(out.size());
          auto writer = corio::spawn([](tls::stream& s, std::vector<std::byte>& out) -> task<> {
            co_await s.write_all(out);
            co_await s.shutdown();
          }(s, out));
          std::size_t got = 0;
          while (got < in.size()) {
            std::size_t n = co_await s.read(std::span(in).subspan(got));
            REQUIRE(n > 0);
            got += n;
          }
          co_await writer;
          CHECK(in == out);
          std::array<std::byte, 16> extra;
          CHECK(co_await s.read(extra) == 0);
          co_await server;
        }(),
        {.workers = 2});
  }

  TEST_CASE("both sides send close_notify at once: each then reads the end of stream (T34e)") {
    for (int round = 0; round < 20; ++round) {
      corio::run(
          []() -> task<> {
            auto l = tcp_listener::bind("127.0.0.1:0");
            auto server = corio::spawn([](tcp_listener& l) -> task<bool> {
              auto a = co_await l.accept();
              auto s = co_await tls::accept(server_ctx(), std::move(a.stream));
              std::array<std::byte, 5> hello;
              co_await s.read_exact(hello);
              co_await s.shutdown();
              std::array<std::byte, 16> buf;
              co_return co_await s.read(buf) == 0;
            }(l));
            auto tcp = co_await tcp_stream::connect(l.local_address());
            auto s = co_await tls::connect(trusting_client(), std::move(tcp), "localhost");
            co_await s.write_all(std::string_view("hello"));
            co_await s.shutdown();  // races the server's
            // read_exact wants bytes the session will never bring: its close_notify is an error
            // there, and an end of stream for read.
            std::array<std::byte, 16> buf;
            std::error_code code;
            try {
              (void)co_await s.read_exact(buf);
            } catch (const std::system_error& e) {
              code = e.code();
            }
            CHECK(code == corio::errc::unexpected_eof);
            CHECK(co_await s.read(buf) == 0);
            CHECK(co_await server);
          }(),
          {.workers = 2});
    }
  }

  TEST_CASE(
      "a ClientHello sent a byte every 100 ms runs into the server's handshake timeout, "
      "while another client is served (T34c)") {
    corio::run(
        []() -> task<> {
          // A real ClientHello: what a corio client sends first, caught by a plain listener.
          auto catcher = tcp_listener::bind("127.0.0.1:0");
          auto hello_client = corio::spawn([](socket_address a) -> task<> {
            auto tcp = co_await tcp_stream::connect(a);
            try {
              (void)co_await tls::connect(trusting_client(), std::move(tcp), "localhost");
            } catch (const std::exception&) {  // the catcher hangs up
            }
          }(catcher.local_address()));
          // One whole record: its 5-byte header, then the length it gives (a read may return
          // less, and fault injection shortens transfers).
          std::vector<std::byte> hello(5);
          {
            auto a = co_await catcher.accept();
            co_await a.stream.read_exact(hello);
            std::size_t len = (std::to_integer<std::size_t>(hello[3]) << 8) |
                              std::to_integer<std::size_t>(hello[4]);
            hello.resize(5 + len);
            co_await a.stream.read_exact(std::span(hello).subspan(5));
          }
          co_await hello_client;
          REQUIRE(hello.size() > 100);
          REQUIRE(hello[0] == std::byte{0x16});  // a handshake record

          auto l = tcp_listener::bind("127.0.0.1:0");
          // The server: each connection's handshake must finish within 600 ms.
          auto handshake = [](tcp_stream tcp) -> task<std::string> {
            try {
              auto s = co_await corio::timeout(600ms, tls::accept(server_ctx(), std::move(tcp)));
              std::vector<std::byte> buf(64);
              std::size_t n = co_await s.read(buf);
              co_await s.write_all(std::span(buf).first(n));
              co_await s.shutdown();
              co_return "served";
            } catch (const corio::timed_out&) {
              co_return "timed out";
            }
          };
          auto slow_conn = co_await tcp_stream::connect(l.local_address());
          auto slow_server = corio::spawn(handshake((co_await l.accept()).stream));
          auto trickle =
              corio::spawn([](tcp_stream& s, std::vector<std::byte>& hello) -> task<int> {
                int sent = 0;
                try {
                  for (std::byte& b : hello) {
                    co_await s.write_all(std::span(&b, 1));
                    ++sent;
                    co_await corio::sleep_for(100ms);
                  }
                } catch (const std::system_error&) {  // the server hung up
                }
                co_return sent;
              }(slow_conn, hello));
          // Meanwhile a normal client gets its echo.
          auto start = std::chrono::steady_clock::now();
          auto fast_tcp = co_await tcp_stream::connect(l.local_address());
          auto fast_server = corio::spawn(handshake((co_await l.accept()).stream));
          auto fast = co_await tls::connect(trusting_client(), std::move(fast_tcp), "localhost");
          co_await fast.write_all(std::string_view("ping"));
          std::array<std::byte, 4> pong;
          co_await fast.read_exact(pong);
          CHECK(std::chrono::steady_clock::now() - start <
                (corio::test::sanitized || corio::test::faults_injected() ? 2000ms : 500ms));
          CHECK(co_await fast_server == "served");
          CHECK(co_await slow_server == "timed out");
          // The server closed the slow connection: the trickle stops with an error or an EOF
          // read, long before its ClientHello is through.
          slow_conn.shutdown(shutdown_how::write);
          std::array<std::byte, 64> rest;
          try {
            for (;;) {
              std::size_t n = co_await slow_conn.read(rest);
              if (n == 0) break;
            }
          } catch (const std::system_error&) {
          }
          int sent = co_await trickle;
          CHECK(sent < static_cast<int>(hello.size()));
          MESSAGE("the slow client got " << sent << " of " << hello.size()
                                         << " ClientHello bytes through before the timeout");
        }(),
        {.workers = 2});
  }

  TEST_CASE(
      "openssl s_server requests a KeyUpdate in the middle of a 16 MiB write: both sides "
      "change keys, every byte arrives, and the stream goes on (T34b)") {
    const certs& c = the_certs();
    std::string out = c.path("keyupdate.out"), msg = c.path("keyupdate.msg");
    int ctl[2];
    REQUIRE(::pipe2(ctl, O_CLOEXEC) == 0);
    // Without -quiet, s_server takes a line "K" on its stdin as "send KeyUpdate, update
    // requested"; other lines go to the client, and what it receives goes to its stdout (with
    // status lines between the records). -msg logs every handshake message.
    constexpr std::size_t line = 64, lines = (std::size_t{16} << 20) / line;
    {
      s_server server("server", {"-msg", "-msgfile", msg}, ctl[0], out);
      ::close(ctl[0]);
      corio::run(
          [](std::uint16_t port, int ctl) -> task<> {
            auto s = co_await tls::connect(trusting_client(), co_await connect_retrying(port),
                                           "localhost");
            // 64-byte numbered lines: a TLS record (16 KiB) holds 256 whole ones.
            std::string payload;
            payload.reserve(lines * line);
            for (std::size_t i = 0; i < lines; ++i) {
              payload += fmt::format("{:08} {:->54}\n", i, 'x');
            }
            std::atomic<bool> quarter{false};
            auto writer = corio::spawn(
                [](tls::stream& s, const std::string& p, std::atomic<bool>& quarter) -> task<> {
                  for (std::size_t off = 0; off < p.size(); off += 64 * 1024) {
                    co_await s.write_all(std::string_view(p).substr(off, 64 * 1024));
                    if (off >= p.size() / 4) quarter = true;
                  }
                }(s, payload, quarter));
            auto reader = corio::spawn([](tls::stream& s) -> task<std::string> {
              std::string got;
              std::array<std::byte, 256> buf;
              while (got.find("done\n") == std::string::npos) {
                std::size_t n = co_await s.read(buf);
                if (n == 0) break;
                got.append(reinterpret_cast<const char*>(buf.data()), n);
              }
              co_return got;
            }(s));
            while (!quarter) co_await corio::sleep_for(1ms);
            REQUIRE(::write(ctl, "K\n", 2) == 2);  // 4 MiB are out, 12 MiB to go
            co_await writer;
            REQUIRE(::write(ctl, "done\n", 5) == 5);
            CHECK(co_await corio::timeout(10s, std::move(reader)) == "done\n");
          }(server.port(), ctl[1]),
          {.workers = 2});
      // Everything the client wrote reaches s_server's stdout before the test kills it.
      std::ifstream f(out);
      std::string l;
      std::size_t next = 0, bad = 0;
      for (int tries = 0; tries < 100 && next < lines; ++tries) {
        while (next < lines && std::getline(f, l)) {
          if (l.size() != line - 1 || l[8] != ' ') continue;  // s_server's status lines
          bad += l != fmt::format("{:08} {:->54}", next, 'x');
          ++next;
        }
        f.clear();
        if (next < lines) std::this_thread::sleep_for(50ms);
      }
      CHECK(next == lines);
      CHECK(bad == 0);
    }
    ::close(ctl[1]);
    std::ifstream m(msg);
    std::string log((std::istreambuf_iterator<char>(m)), std::istreambuf_iterator<char>());
    CHECK_MESSAGE(log.find(">>> TLS 1.3, Handshake [length 0005], KeyUpdate") != std::string::npos,
                  "s_server sent no KeyUpdate");
    CHECK_MESSAGE(log.find("<<< TLS 1.3, Handshake [length 0005], KeyUpdate") != std::string::npos,
                  "the corio client did not answer the KeyUpdate with its own");
    // Mid-stream: application data records (inner content type 0x17) kept arriving after the
    // client's KeyUpdate, under its new keys.
    std::size_t at = log.find("<<< TLS 1.3, Handshake [length 0005], KeyUpdate"), after = 0;
    constexpr std::string_view data_record = "<<< TLS 1.3, InnerContent [length 0001]\n    17";
    for (std::size_t p = at;
         at != std::string::npos && (p = log.find(data_record, p + 1)) != std::string::npos;) {
      ++after;
    }
    MESSAGE(after << " data records arrived after the client's KeyUpdate");
    CHECK(after > 0);
    ::unlink(out.c_str());
    ::unlink(msg.c_str());
  }
}
