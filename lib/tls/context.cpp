// tls::context: building SSL_CTXs for servers (PEM, PKCS#12) and clients (verifying by default).
#include "tls_internal.hpp"

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace corio::tls {

using detail::throw_ssl;

namespace {

// Settings every corio context gets: TLS 1.2 at least; no renegotiation, so that after the
// handshake a write never needs to read and a read never needs to write for anything but
// TLS 1.3's post-handshake messages; idle connections give their record buffers back.
std::shared_ptr<context::state> new_state(const SSL_METHOD* method, bool server) {
  ERR_clear_error();
  auto s = std::make_shared<context::state>();
  s->is_server = server;
  s->ctx = SSL_CTX_new(method);
  if (s->ctx == nullptr) throw_ssl("TLS: creating a context");
  SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(s->ctx, SSL_MODE_RELEASE_BUFFERS);
  return s;
}

// OpenSSL reports a missing file as a generic BIO error; the errno says it better.
void check_readable(const std::string& path, const char* what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    int err = errno;
    throw error(err,
                std::string("TLS: reading the ") + what + " '" + path + "': " + std::strerror(err));
  }
  std::fclose(f);
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void* arg) {
  auto* s = static_cast<context::state*>(arg);
  unsigned char* chosen = nullptr;
  auto* ours = reinterpret_cast<const unsigned char*>(s->alpn_wire.data());
  if (SSL_select_next_proto(&chosen, outlen, ours, static_cast<unsigned>(s->alpn_wire.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

context context::server_from_pem(const std::string& cert_chain_file, const std::string& key_file) {
  check_readable(cert_chain_file, "certificate chain");
  check_readable(key_file, "private key");
  auto s = new_state(TLS_server_method(), true);
  if (SSL_CTX_use_certificate_chain_file(s->ctx, cert_chain_file.c_str()) != 1) {
    throw_ssl("TLS: loading the certificate chain '" + cert_chain_file + "'");
  }
  if (SSL_CTX_use_PrivateKey_file(s->ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw_ssl("TLS: loading the private key '" + key_file + "'");
  }
  if (SSL_CTX_check_private_key(s->ctx) != 1) {
    throw_ssl("TLS: the private key '" + key_file + "' does not match the certificate '" +
              cert_chain_file + "'");
  }
  return context(std::move(s));
}

context context::server_from_pkcs12(const std::string& path, const std::string& password) {
  check_readable(path, "PKCS#12 bundle");
  auto s = new_state(TLS_server_method(), true);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw error(errno, "TLS: opening '" + path + "': " + std::strerror(errno));
  std::unique_ptr<PKCS12, void (*)(PKCS12*)> p12(d2i_PKCS12_fp(f.get(), nullptr), &PKCS12_free);
  if (!p12) throw_ssl("TLS: reading the PKCS#12 bundle '" + path + "'");
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* chain = nullptr;
  if (PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &chain) != 1) {
    throw_ssl("TLS: opening the PKCS#12 bundle '" + path + "' (wrong password?)");
  }
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key_owner(key, &EVP_PKEY_free);
  std::unique_ptr<X509, void (*)(X509*)> cert_owner(cert, &X509_free);
  auto free_chain = [](STACK_OF(X509) * c) { sk_X509_pop_free(c, X509_free); };
  std::unique_ptr<STACK_OF(X509), decltype(free_chain)> chain_owner(chain, free_chain);
  if (cert == nullptr || key == nullptr) {
    throw error(EPROTO, "TLS: the PKCS#12 bundle '" + path + "' lacks a certificate or a key");
  }
  if (SSL_CTX_use_certificate(s->ctx, cert) != 1 || SSL_CTX_use_PrivateKey(s->ctx, key) != 1 ||
      SSL_CTX_check_private_key(s->ctx) != 1) {
    throw_ssl("TLS: using the certificate and key of '" + path + "'");
  }
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    if (SSL_CTX_add1_chain_cert(s->ctx, sk_X509_value(chain, i)) != 1) {
      throw_ssl("TLS: adding the chain of '" + path + "'");
    }
  }
  return context(std::move(s));
}

context context::client() {
  return client(client_options{});
}

context context::client(const client_options& options) {
  auto s = new_state(TLS_client_method(), false);
  if (options.verify) {
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, nullptr);
    if (!options.ca_file.empty()) {
      check_readable(options.ca_file, "CA file");
      if (SSL_CTX_load_verify_locations(s->ctx, options.ca_file.c_str(), nullptr) != 1) {
        throw_ssl("TLS: loading the CA file '" + options.ca_file + "'");
      }
    } else if (SSL_CTX_set_default_verify_paths(s->ctx) != 1) {
      throw_ssl("TLS: loading the system's trust store");
    }
  } else {
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, nullptr);
  }
  return context(std::move(s));
}

void context::set_alpn(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) {
      throw std::invalid_argument("TLS: an ALPN protocol name must have 1 to 255 bytes");
    }
    wire += static_cast<char>(p.size());
    wire += p;
  }
  s_->alpn_wire = std::move(wire);
  if (s_->is_server) {
    SSL_CTX_set_alpn_select_cb(s_->ctx, s_->alpn_wire.empty() ? nullptr : &select_alpn, s_.get());
  } else {
    ERR_clear_error();
    if (SSL_CTX_set_alpn_protos(s_->ctx,
                                reinterpret_cast<const unsigned char*>(s_->alpn_wire.data()),
                                static_cast<unsigned>(s_->alpn_wire.size())) != 0) {
      throw_ssl("TLS: setting ALPN protocols");
    }
  }
}

ssl_ctx_st* context::native_handle() const noexcept {
  return s_ ? s_->ctx : nullptr;
}

}  // namespace corio::tls
