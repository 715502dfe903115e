// TLS for the client and peer ports (`[network] tls_enabled, tls_cert, tls_key, tls_ca,
// require_client_cert`; docs/configuration-reference.md).
//
// Files. tls_cert is a PEM certificate chain (leaf first), tls_key the leaf's unencrypted PEM
// private key, tls_ca a PEM bundle of one or more CA certificates. tls_cert and tls_key may name
// the same file holding both (then one rename replaces the pair atomically).
//
// Reloading. The configured files are never handed to gRPC directly. At start, and again on
// each SIGHUP, StageTlsFiles checks them (InspectTlsFiles) and, only if they are valid, copies
// them into a private staging directory (<data_dir>/tls: key + certificate chain in one file,
// the CA bundle in another, each replaced by an atomic rename). The credentials read the staged
// files through gRPC's FileWatcherCertificateProvider, which re-reads them every
// kCertRefreshSeconds and gives the new certificate, key and CA to the handshakes of NEW
// connections; connections already open keep the session they negotiated and are not cut. So:
//   - a rotation takes effect on SIGHUP (within kCertRefreshSeconds of it), not before;
//   - files that are broken, mismatched or half-rotated when SIGHUP arrives are refused with a
//     logged error and the previous certificate stays in service.
// (gRPC 1.51 cannot swap a running server's certificate on request; the file watcher over
// staged copies is how we make SIGHUP the trigger.)

// Client port: TLS with tls_cert / tls_key. With require_client_cert, a client must present a
// certificate that tls_ca signs (mutual TLS); otherwise no client certificate is requested.
//
// Peer port (and dialing peers): TLS with tls_cert / tls_key on both sides. With tls_ca set it
// is mutual TLS: a node accepts a peer only if tls_ca signs the certificate the peer presents,
// and a node dialing a peer accepts it only if tls_ca signs the peer's certificate and the
// certificate names the host of that peer's cluster.peers entry (a DNS or IP subjectAltName).
// Without tls_ca, a node dialing a peer verifies it against the system's trust store and the
// peer port does not ask for a certificate.
#ifndef AMATERS_SERVER_TLS_H_
#define AMATERS_SERVER_TLS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/config/config.h"

namespace amaters::server {

// How often gRPC re-reads the certificate, key and CA files.
inline constexpr unsigned kCertRefreshSeconds = 1;

// What the configured files hold.
struct TlsFilesInfo {
  std::string subject;     // of the leaf certificate, e.g. "CN=node1, O=example"
  std::string issuer;      // of the leaf certificate
  absl::Time not_before;   // validity of the leaf certificate
  absl::Time not_after;
  int chain_length = 0;    // certificates in tls_cert, leaf included
  int ca_certificates = 0; // certificates in tls_ca (0 when tls_ca is not set)
};

// Reads and parses the configured files (paths as in `config`, already resolved): tls_cert must
// hold at least one PEM certificate, tls_key an unencrypted PEM private key that belongs to the
// first certificate of tls_cert, tls_ca (when set) at least one PEM certificate. The error
// names the key and the file, e.g.
//   [network] tls_cert = "/etc/amaters/node.pem": no PEM certificate in the file
//   [network] tls_key = "/etc/amaters/old.key": not the private key of the certificate in [network] tls_cert = "/etc/amaters/node.pem"
// InvalidArgument (FailedPrecondition when TLS is off: there is nothing to inspect).
absl::StatusOr<TlsFilesInfo> InspectTlsFiles(const Config& config);
// OK without TLS, else InspectTlsFiles(config).status(). Used at start-up (a bad file fails the
// start) and on SIGHUP.
absl::Status CheckTlsFiles(const Config& config);
// "2026-05-01T12:00:00Z".
std::string FormatTlsTime(absl::Time t);

// Credentials for a listening port (plaintext without TLS).
// Validates the files `config` names and copies them into `stage_dir` (created 0700; the
// identity file is 0600). Returns `config` with tls_cert and tls_key pointing at the staged
// identity file and tls_ca at the staged CA bundle: pass that to the credential functions
// below. On error (invalid files, I/O) the previously staged files are left untouched. No-op
// returning `config` itself when TLS is off.
absl::StatusOr<Config> StageTlsFiles(const Config& config, const std::string& stage_dir);

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Config& config, bool peer_port);
// Credentials for dialing peers; null without TLS (plaintext).
std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const Config& config);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_TLS_H_
