#pragma once

// cluster_tls: the data plane's transport between nodes (issue 22), plain
// BASP (CAF's middleman) or BASP over mutual TLS (CAF's openssl module).
//
// What CAF 0.17.6's openssl module does with the options set here (read
// from libcaf_openssl/src/openssl/session.cpp, tag 0.17.6, and proven by
// tests/e2e/basp_tls_test.cpp): once any openssl option is set, every
// session, client and server alike, uses SSL_VERIFY_PEER |
// SSL_VERIFY_FAIL_IF_NO_PEER_CERT against the CA file, with cipher list
// "HIGH:!aNULL:!MD5". So both ends must present a certificate chaining to
// the CA: mutual. It checks no name: ANY certificate the CA signed is a
// valid node, so the CA must be the cluster's own. It re-reads the files
// for each new connection on the I/O thread and throws there (ending the
// process) if they cannot be loaded: validate() loads them up front.
//
// Blocking: publish_peer and connect_peer block the calling thread (call
// them from main or a thread of their own, never from an actor); actors
// request connect_atom from peer_middleman() instead.

#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/timespan.hpp>

namespace parley::cluster {

/// A node's TLS credentials: PEM files, all three or none.
struct tls_files {
  std::string cert; ///< this node's certificate (chain), signed by `ca`
  std::string key;  ///< the certificate's private key (unencrypted PEM)
  std::string ca;   ///< the cluster CA: peers must present a cert it signed

  /// True when all three are set (TLS on). validate() refuses partial sets.
  bool enabled() const {
    return !cert.empty() && !key.empty() && !ca.empty();
  }

  /// Empty when usable: none set, or all three readable, the key matching
  /// the certificate and the certificate verifying against the CA. Else a
  /// message naming the option (--cluster.tls-cert/-key/-ca) at fault.
  std::string validate() const;
};

/// Whether `host` is an address the cluster port may bind or dial: an
/// IPv4/IPv6 literal that is loopback (127/8, ::1), private (10/8,
/// 172.16/12, 192.168/16, fc00::/7) or link-local (169.254/16, fe80::/10),
/// or "localhost". 0.0.0.0, :: and public addresses are refused.
bool peer_host_allowed(const std::string& host);

/// Prepares `cfg` for the middleman before the actor system exists:
/// loads caf::io::middleman (do not load it again), keeps automatic
/// connections off and, when `tls.enabled()`, loads caf::openssl::manager
/// with the certificate, key and CA file. Returns validate()'s message
/// (and changes nothing) if `tls` is unusable.
std::string configure_middleman(caf::actor_system_config& cfg,
                                const tls_files& tls);

/// The middleman actor to request `connect_atom::value, host, port` from
/// (replies `(node_id, strong_actor_ptr, std::set<std::string>)`): the
/// openssl module's when `tls.enabled()`, the plain middleman's otherwise.
/// An invalid handle if TLS is asked for but the module is not loaded.
caf::io::middleman_actor peer_middleman(caf::actor_system& sys,
                                        const tls_files& tls);

/// Publishes `whom` on `host`:`port` (0: a free port), over TLS when
/// `tls.enabled()`; returns the bound port. Refuses a host that
/// peer_host_allowed() refuses (sec::invalid_argument), and TLS on a
/// system that configure_middleman() did not set up for it.
caf::expected<uint16_t> publish_peer(caf::actor_system& sys,
                                     const caf::actor& whom,
                                     const std::string& host, uint16_t port,
                                     const tls_files& tls);

/// Connects to the actor published at `host`:`port`, over TLS when
/// `tls.enabled()`, waiting at most `timeout` (a peer that never completes
/// a handshake, e.g. plain BASP against a TLS port, would otherwise hang
/// the caller: CAF's own remote_actor waits forever).
caf::expected<caf::actor> connect_peer(caf::actor_system& sys,
                                       const std::string& host, uint16_t port,
                                       const tls_files& tls,
                                       caf::timespan timeout
                                       = std::chrono::seconds(10));

} // namespace parley::cluster
