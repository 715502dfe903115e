#include "server/tls.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace amaters::server {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// `[network] tls_cert = "/path"`, the start of every error about one file.
std::string Where(const char* key, const std::string& path) {
  return absl::StrCat("[network] ", key, " = \"", path, "\"");
}

// The whole file, or an error naming the key, the file and errno.
absl::StatusOr<std::string> ReadWhole(const char* key, const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(key, path), ": cannot read: ", std::strerror(errno)));
  }
  std::string out;
  char buf[16384];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(Where(key, path), ": cannot read: ", std::strerror(e)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// The reason of the newest queued OpenSSL error ("" when none), clearing the queue.
std::string TakeOpenSslError() {
  const unsigned long e = ERR_peek_last_error();
  std::string out;
  if (e != 0) {
    const char* reason = ERR_reason_error_string(e);
    out = reason != nullptr ? reason : absl::StrCat("error ", e);
  }
  ERR_clear_error();
  return out;
}

bool EndOfPem(unsigned long e) {
  return e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
}

// Every PEM certificate of `pem` (other PEM blocks, such as a private key, are skipped).
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(const char* key, const std::string& path,
                                                       const std::string& pem) {
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> certs;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  if (!EndOfPem(ERR_peek_last_error())) {
    return absl::InvalidArgumentError(absl::StrCat(Where(key, path), ": certificate ",
                                                   certs.size() + 1, " cannot be parsed (openssl: ",
                                                   TakeOpenSslError(), ")"));
  }
  ERR_clear_error();
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(key, path), ": no PEM certificate in the file"));
  }
  return certs;
}

// Refuses to prompt for a passphrase.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<PkeyPtr> ParsePrivateKey(const char* key, const std::string& path,
                                        const std::string& pem) {
  if (absl::StrContains(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
      absl::StrContains(pem, "Proc-Type: 4,ENCRYPTED")) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(key, path), ": the private key is encrypted; give it without a passphrase"));
  }
  // "-----BEGIN PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----", "-----BEGIN RSA ...".
  bool has_key_block = false;
  for (size_t at = pem.find("-----BEGIN "); at != std::string::npos;
       at = pem.find("-----BEGIN ", at + 1)) {
    const size_t end = pem.find("-----", at + 11);
    if (end == std::string::npos) break;
    if (absl::EndsWith(absl::string_view(pem).substr(at + 11, end - at - 11), "PRIVATE KEY")) {
      has_key_block = true;
      break;
    }
  }
  if (!has_key_block) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(key, path), ": no PEM private key in the file"));
  }
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!pkey) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(key, path), ": the private key cannot be parsed (openssl: ", TakeOpenSslError(), ")"));
  }
  return pkey;
}

std::string NameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

absl::Time AsnTime(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

std::shared_ptr<grpc::experimental::CertificateProviderInterface> CertProvider(const Config& c) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      c.network.tls_key, c.network.tls_cert, c.network.tls_ca, kCertRefreshSeconds);
}

}  // namespace

std::string FormatTlsTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<TlsFilesInfo> InspectTlsFiles(const Config& c) {
  if (!c.network.tls_enabled) return absl::FailedPreconditionError("TLS is off");
  const std::string& cert_path = c.network.tls_cert;
  const std::string& key_path = c.network.tls_key;
  absl::StatusOr<std::string> cert_pem = ReadWhole("tls_cert", cert_path);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::vector<X509Ptr>> chain = ParseCertificates("tls_cert", cert_path, *cert_pem);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key_pem = ReadWhole("tls_key", key_path);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<PkeyPtr> pkey = ParsePrivateKey("tls_key", key_path, *key_pem);
  if (!pkey.ok()) return pkey.status();
  X509* leaf = chain->front().get();
  if (X509_check_private_key(leaf, pkey->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(Where("tls_key", key_path),
                                                   ": not the private key of the certificate in ",
                                                   Where("tls_cert", cert_path)));
  }
  TlsFilesInfo info;
  info.subject = NameText(X509_get_subject_name(leaf));
  info.issuer = NameText(X509_get_issuer_name(leaf));
  info.not_before = AsnTime(X509_get0_notBefore(leaf));
  info.not_after = AsnTime(X509_get0_notAfter(leaf));
  info.chain_length = static_cast<int>(chain->size());
  if (!c.network.tls_ca.empty()) {
    absl::StatusOr<std::string> ca_pem = ReadWhole("tls_ca", c.network.tls_ca);
    if (!ca_pem.ok()) return ca_pem.status();
    absl::StatusOr<std::vector<X509Ptr>> cas = ParseCertificates("tls_ca", c.network.tls_ca, *ca_pem);
    if (!cas.ok()) return cas.status();
    info.ca_certificates = static_cast<int>(cas->size());
  }
  return info;
}

absl::Status CheckTlsFiles(const Config& c) {
  if (!c.network.tls_enabled) return absl::OkStatus();
  return InspectTlsFiles(c).status();
}

namespace {

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `contents` to `tmp` (created or truncated) and fsyncs it, with `mode`.
absl::Status WriteSynced(const std::string& tmp, const std::string& contents, mode_t mode) {
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  fchmod(fd, mode);
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (!synced) {
    return absl::InternalError(absl::StrCat("cannot fsync ", tmp, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Rename(const std::string& from, const std::string& to) {
  if (rename(from.c_str(), to.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot replace ", to, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> StageTlsFiles(const Config& config, const std::string& stage_dir) {
  if (!config.network.tls_enabled) return config;
  if (absl::Status s = CheckTlsFiles(config); !s.ok()) return s;
  absl::StatusOr<std::string> key = ReadWhole(config.network.tls_key);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> cert = ReadWhole(config.network.tls_cert);
  if (!cert.ok()) return cert.status();
  std::string ca;
  if (!config.network.tls_ca.empty()) {
    absl::StatusOr<std::string> c = ReadWhole(config.network.tls_ca);
    if (!c.ok()) return c.status();
    ca = *std::move(c);
  }
  if (mkdir(stage_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", stage_dir, ": ", std::strerror(errno)));
  }
  // One file for key and chain: one rename swaps the pair, so the watcher never reads a key
  // with the wrong certificate. (When tls_cert and tls_key name one file, it holds both
  // already; the key is then found by the PEM reader among the certificates.)
  std::string identity = config.network.tls_key == config.network.tls_cert
                             ? *key
                             : absl::StrCat(*key, absl::EndsWith(*key, "\n") ? "" : "\n", *cert);
  // The bytes just read are written to new files and checked there, so what gets served is
  // exactly what was checked even if the operator's files change meanwhile; only then do the
  // new files replace the staged ones.
  Config next = config;
  next.network.tls_key = stage_dir + "/identity.pem.new";
  next.network.tls_cert = next.network.tls_key;
  if (!ca.empty()) next.network.tls_ca = stage_dir + "/ca.pem.new";
  if (absl::Status s = WriteSynced(next.network.tls_key, identity, 0600); !s.ok()) return s;
  if (!ca.empty()) {
    if (absl::Status s = WriteSynced(next.network.tls_ca, ca, 0644); !s.ok()) return s;
  }
  if (absl::Status s = CheckTlsFiles(next); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("the files changed while being read: ", s.message()));
  }
  Config staged = config;
  staged.network.tls_key = stage_dir + "/identity.pem";
  staged.network.tls_cert = staged.network.tls_key;
  if (!ca.empty()) {
    staged.network.tls_ca = stage_dir + "/ca.pem";
    if (absl::Status s = Rename(next.network.tls_ca, staged.network.tls_ca); !s.ok()) return s;
  }
  if (absl::Status s = Rename(next.network.tls_key, staged.network.tls_key); !s.ok()) return s;
  return staged;
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Config& c, bool peer_port) {
  if (!c.network.tls_enabled) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions options(CertProvider(c));
  options.watch_identity_key_cert_pairs();
  // Client port: verify clients only when asked to. Peer port: mutual TLS whenever there is a CA.
  const bool verify_clients =
      !c.network.tls_ca.empty() && (peer_port || c.network.require_client_cert);
  if (verify_clients) options.watch_root_certs();
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
  // Without a CA, gRPC verifies peers against the system's trust store.
  if (!c.network.tls_ca.empty()) options.watch_root_certs();
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace amaters::server
