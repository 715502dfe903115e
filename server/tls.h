// TLS for the client and peer ports (`[network] tls_enabled, tls_cert, tls_key, tls_ca,
// require_client_cert`; docs/configuration-reference.md).
//
// Certificates and keys are read through gRPC's file-watching certificate provider, so new
// connections get the files' current contents: rotating them on disk takes effect without a
// restart, and connections already open are not cut. SIGHUP checks the files at once and logs
// the outcome.
//
// Client port: server TLS; client certificates are required and verified against tls_ca when
// require_client_cert is set. Peer port: mutual TLS whenever tls_ca is set — a node refuses a
// peer whose certificate tls_ca does not sign, and checks the peer's certificate names the
// host it dialed.
#ifndef AMATERS_SERVER_TLS_H_
#define AMATERS_SERVER_TLS_H_

#include <memory>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "server/config/config.h"

namespace amaters::server {

// How often certificate and key files are re-read.
inline constexpr unsigned kCertRefreshSeconds = 1;

// The configured files exist and are readable (no-op without TLS).
absl::Status CheckTlsFiles(const Config& config);
// Credentials for a listening port (plaintext without TLS).
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Config& config, bool peer_port);
// Credentials for dialing peers; null without TLS (plaintext).
std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const Config& config);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_TLS_H_
