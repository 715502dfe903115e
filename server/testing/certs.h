// Throwaway certificate authorities and certificates for TLS tests, made with the `openssl`
// command line (EC P-256 keys, unencrypted PEM). Every function returns file paths.
//
//   absl::StatusOr<CertFiles> ca = MakeCa(dir, "cluster-ca");
//   absl::StatusOr<CertFiles> node = MakeCert(*ca, dir, "node1", CertUse::kServer, 30);
//   // node->cert is signed by ca->cert, valid for 30 days, names IP 127.0.0.1 and localhost.
#ifndef AMATERS_SERVER_TESTING_CERTS_H_
#define AMATERS_SERVER_TESTING_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace amaters::server::testing {

// A certificate and its private key: dir/name.pem and dir/name.key.
struct CertFiles {
  std::string cert;
  std::string key;
};

// A self-signed CA (CN = name, basicConstraints CA:TRUE), valid for `days`.
absl::StatusOr<CertFiles> MakeCa(const std::string& dir, const std::string& name, int days = 365);

enum class CertUse {
  // A node: subjectAltName IP:127.0.0.1 and DNS:localhost (unless told otherwise),
  // extendedKeyUsage serverAuth and
  // clientAuth (a node presents the same certificate when it dials its peers).
  kServer,
  // A client: extendedKeyUsage clientAuth, no subjectAltName.
  kClient,
};

inline constexpr char kLocalNames[] = "IP:127.0.0.1,DNS:localhost";

// A leaf certificate with CN = name signed by `ca`, valid from now for `days` (so its notAfter
// is now + days; two certificates made with different `days` differ in notAfter). A kServer
// certificate names `subject_alt_names` (openssl syntax).
absl::StatusOr<CertFiles> MakeCert(const CertFiles& ca, const std::string& dir,
                                   const std::string& name, CertUse use, int days = 30,
                                   const std::string& subject_alt_names = kLocalNames);

// Concatenates PEM files into `path` (a CA bundle, or a key and certificate in one file).
void ConcatFiles(const std::vector<std::string>& inputs, const std::string& path);

// Writes `contents` to a temporary file next to `path` and renames it over `path`, as an
// operator (or a tool such as cert-manager) replaces a certificate.
void ReplaceFileAtomically(const std::string& path, const std::string& contents);

// The notAfter of the certificate in a PEM file, as `openssl x509 -enddate` prints it
// ("May  1 12:00:00 2026 GMT").
absl::StatusOr<std::string> CertNotAfter(const std::string& pem_path);

// The notAfter of the certificate a TLS server at `address` ("127.0.0.1:port") serves to a new
// connection, as `openssl s_client -connect ADDRESS -servername localhost | openssl x509
// -enddate` shows it. The server's certificate is not verified.
absl::StatusOr<std::string> ServedCertNotAfter(const std::string& address);

}  // namespace amaters::server::testing

#endif  // AMATERS_SERVER_TESTING_CERTS_H_
