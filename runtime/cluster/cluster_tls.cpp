#include "runtime/cluster/cluster_tls.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

namespace parley::cluster {

namespace {

/// OpenSSL's queued errors as one line (empties the queue).
std::string ssl_errors() {
  std::string out;
  while (auto e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += out.empty() ? "" : "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

bool readable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return in.good() && in.peek() != std::ifstream::traits_type::eof();
}

/// Verifies the context's own certificate against its trust store for
/// `purpose` (a node is both TLS client and TLS server).
std::string verify_own(SSL_CTX* ctx, int purpose, const char* role) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  std::unique_ptr<X509_STORE_CTX, void (*)(X509_STORE_CTX*)> vctx{
    X509_STORE_CTX_new(), X509_STORE_CTX_free};
  if (!vctx
      || X509_STORE_CTX_init(vctx.get(), SSL_CTX_get_cert_store(ctx), cert,
                             chain)
           != 1)
    return "cannot verify --cluster.tls-cert: " + ssl_errors();
  X509_STORE_CTX_set_purpose(vctx.get(), purpose);
  if (X509_verify_cert(vctx.get()) == 1)
    return {};
  ERR_clear_error();
  return std::string{"--cluster.tls-cert does not verify against "
                     "--cluster.tls-ca as a TLS "}
         + role + ": "
         + X509_verify_cert_error_string(
           X509_STORE_CTX_get_error(vctx.get()));
}

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(path, ec);
  return ec ? path : p.string();
}

bool v4_allowed(const unsigned char* a) {
  return a[0] == 127 || a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16)
         || (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254);
}

} // namespace

std::string tls_files::validate() const {
  int set = !cert.empty() + !key.empty() + !ca.empty();
  if (set == 0)
    return {};
  if (set != 3) {
    std::string missing;
    for (auto [v, n] : {std::pair{&cert, "--cluster.tls-cert"},
                        std::pair{&key, "--cluster.tls-key"},
                        std::pair{&ca, "--cluster.tls-ca"}})
      if (v->empty())
        missing += (missing.empty() ? "" : ", ") + std::string{n};
    return "--cluster.tls-cert, --cluster.tls-key and --cluster.tls-ca go "
           "together (mutual TLS); missing: "
           + missing;
  }
  for (auto [v, n] : {std::pair{&cert, "--cluster.tls-cert"},
                      std::pair{&key, "--cluster.tls-key"},
                      std::pair{&ca, "--cluster.tls-ca"}})
    if (!readable(*v))
      return std::string{n} + ": cannot read " + *v;
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx{SSL_CTX_new(TLS_method()),
                                                   SSL_CTX_free};
  if (!ctx)
    return "cannot create an OpenSSL context: " + ssl_errors();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1)
    return "--cluster.tls-cert: no PEM certificate in " + cert + ": "
           + ssl_errors();
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM)
        != 1
      || SSL_CTX_check_private_key(ctx.get()) != 1)
    return "--cluster.tls-key: " + key
           + " is not an unencrypted PEM key matching --cluster.tls-cert: "
           + ssl_errors();
  if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1)
    return "--cluster.tls-ca: no PEM CA certificate in " + ca + ": "
           + ssl_errors();
  if (auto msg = verify_own(ctx.get(), X509_PURPOSE_SSL_SERVER, "server");
      !msg.empty())
    return msg;
  return verify_own(ctx.get(), X509_PURPOSE_SSL_CLIENT, "client");
}

bool peer_host_allowed(const std::string& host) {
  if (host == "localhost")
    return true;
  unsigned char a[16];
  if (inet_pton(AF_INET, host.c_str(), a) == 1)
    return v4_allowed(a);
  if (inet_pton(AF_INET6, host.c_str(), a) != 1)
    return false;
  static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(a, a + 16, loop6))
    return true;
  if (std::equal(a, a + 12, mapped))
    return v4_allowed(a + 12);
  return (a[0] & 0xfe) == 0xfc                  // fc00::/7 (unique local)
         || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80); // fe80::/10
}

std::string configure_middleman(caf::actor_system_config& cfg,
                                const tls_files& tls) {
  if (auto msg = tls.validate(); !msg.empty())
    return msg;
  cfg.load<caf::io::middleman>();
  // On would open an extra port on every interface (notes/caf-0.17.md).
  cfg.set("middleman.enable-automatic-connections", false);
  if (tls.enabled()) {
    cfg.load<caf::openssl::manager>();
    // CAF reads these per connection, on its I/O thread: make them
    // independent of the working directory.
    cfg.openssl_certificate = absolute(tls.cert);
    cfg.openssl_key = absolute(tls.key);
    cfg.openssl_cafile = absolute(tls.ca);
  }
  return {};
}

caf::io::middleman_actor peer_middleman(caf::actor_system& sys,
                                        const tls_files& tls) {
  if (!tls.enabled())
    return sys.middleman().actor_handle();
  if (!sys.has_openssl_manager()
      || !sys.openssl_manager().authentication_enabled())
    return {};
  return sys.openssl_manager().actor_handle();
}

caf::expected<uint16_t> publish_peer(caf::actor_system& sys,
                                     const caf::actor& whom,
                                     const std::string& host, uint16_t port,
                                     const tls_files& tls) {
  if (!peer_host_allowed(host))
    return caf::make_error(caf::sec::invalid_argument,
                           "cluster port must bind a loopback or private "
                           "address, not "
                             + host);
  if (!whom)
    return caf::make_error(caf::sec::cannot_publish_invalid_actor);
  // SO_REUSEADDR: a restarted node gets its port back despite TIME_WAIT
  // (on Linux it never lets two listeners share a port).
  if (!tls.enabled())
    return sys.middleman().publish(whom, port, host.c_str(), true);
  if (!peer_middleman(sys, tls))
    return caf::make_error(caf::sec::invalid_argument,
                           "TLS asked for but the actor system was not "
                           "configured for it (configure_middleman)");
  return caf::openssl::publish(whom, port, host.c_str(), true);
}

caf::expected<caf::actor> connect_peer(caf::actor_system& sys,
                                       const std::string& host, uint16_t port,
                                       const tls_files& tls,
                                       caf::timespan timeout) {
  if (!peer_host_allowed(host))
    return caf::make_error(caf::sec::invalid_argument,
                           "cluster peers must be on a loopback or private "
                           "address, not "
                             + host);
  auto mm = peer_middleman(sys, tls);
  if (!mm)
    return caf::make_error(caf::sec::invalid_argument,
                           "TLS asked for but the actor system was not "
                           "configured for it (configure_middleman)");
  caf::expected<caf::actor> result{caf::sec::request_timeout};
  caf::scoped_actor self{sys};
  self->request(mm, timeout, caf::connect_atom::value, host, port)
    .receive(
      [&](const caf::node_id&, caf::strong_actor_ptr& ptr,
          const std::set<std::string>&) {
        if (ptr)
          result = caf::actor_cast<caf::actor>(std::move(ptr));
        else
          result = caf::make_error(caf::sec::no_actor_published_at_port);
      },
      [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace parley::cluster
