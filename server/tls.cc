#include "server/tls.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace amaters::server {
namespace {

bool ReadableFile(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

std::shared_ptr<grpc::experimental::CertificateProviderInterface> CertProvider(const Config& c) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      c.network.tls_key, c.network.tls_cert, c.network.tls_ca, kCertRefreshSeconds);
}

}  // namespace

absl::Status CheckTlsFiles(const Config& c) {
  if (!c.network.tls_enabled) return absl::OkStatus();
  for (const auto& [key, path] : {std::pair<const char*, std::string>{"tls_cert", c.network.tls_cert},
                                  {"tls_key", c.network.tls_key},
                                  {"tls_ca", c.network.tls_ca}}) {
    if (!path.empty() && !ReadableFile(path)) {
      return absl::InvalidArgumentError(absl::StrCat("[network] ", key, " = \"", path,
                                                     "\": cannot read: ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Config& c, bool peer_port) {
  if (!c.network.tls_enabled) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions options(CertProvider(c));
  options.watch_identity_key_cert_pairs();
  const bool verify_clients = peer_port ? !c.network.tls_ca.empty() : c.network.require_client_cert;
  if (!c.network.tls_ca.empty()) options.watch_root_certs();
  options.set_cert_request_type(verify_clients
                                    ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                    : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const Config& c) {
  if (!c.network.tls_enabled) return nullptr;
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(CertProvider(c));
  options.watch_identity_key_cert_pairs();
  if (!c.network.tls_ca.empty()) options.watch_root_certs();
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace amaters::server
