#include "server/testing/certs.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/testing/process.h"

namespace amaters::server::testing {
namespace {

// Our own openssl configuration, so that the system's openssl.cnf does not matter.
std::string OpensslConfig(const std::string& cn, const std::string& san = kLocalNames) {
  return absl::StrCat(
      "[req]\ndistinguished_name = dn\nprompt = no\n\n[dn]\nCN = ", cn,
      "\n\n[ca_ext]\nbasicConstraints = critical,CA:TRUE\n"
      "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n\n"
      "[server_ext]\nbasicConstraints = CA:FALSE\n"
      "keyUsage = critical,digitalSignature,keyEncipherment\n"
      "extendedKeyUsage = serverAuth,clientAuth\n"
      "subjectAltName = ", san, "\n"
      "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\n"
      "[client_ext]\nbasicConstraints = CA:FALSE\n"
      "keyUsage = critical,digitalSignature,keyEncipherment\n"
      "extendedKeyUsage = clientAuth\n"
      "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n");
}

// The openssl binary found on $PATH (RunCommand does not search it).
std::string Openssl() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    const std::string candidate = absl::StrCat(dir, "/openssl");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "/usr/bin/openssl";
}

absl::Status Run(std::vector<std::string> argv) {
  argv.insert(argv.begin(), Openssl());
  CommandResult r = RunCommand(argv, absl::Seconds(30));
  if (r.exit_code == 0) return absl::OkStatus();
  std::string cmd;
  for (const std::string& a : argv) absl::StrAppend(&cmd, cmd.empty() ? "" : " ", a);
  return absl::InternalError(
      absl::StrCat("`", cmd, "` exited with ", r.exit_code, ": ", r.err, r.out));
}

std::string RandomSerial() {
  std::random_device rd;
  const uint64_t v = (static_cast<uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffULL;
  return absl::StrCat("0x", absl::Hex(v | 1));
}

// "notAfter=May  1 12:00:00 2026 GMT\n" -> "May  1 12:00:00 2026 GMT".
absl::StatusOr<std::string> ParseEndDate(const CommandResult& r, const std::string& what) {
  absl::string_view out = absl::StripAsciiWhitespace(r.out);
  if (r.exit_code != 0 || !absl::ConsumePrefix(&out, "notAfter=")) {
    return absl::UnavailableError(
        absl::StrCat(what, ": no certificate (exit ", r.exit_code, "): ", r.err, r.out));
  }
  return std::string(out);
}

}  // namespace

absl::StatusOr<CertFiles> MakeCa(const std::string& dir, const std::string& name, int days) {
  const std::string cnf = absl::StrCat(dir, "/", name, ".cnf");
  WriteFile(cnf, OpensslConfig(name));
  CertFiles ca{absl::StrCat(dir, "/", name, ".pem"), absl::StrCat(dir, "/", name, ".key")};
  if (absl::Status s = Run({"req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca.key, "-out",
                            ca.cert, "-days", absl::StrCat(days), "-config", cnf, "-extensions",
                            "ca_ext", "-set_serial", RandomSerial()});
      !s.ok()) {
    return s;
  }
  return ca;
}

absl::StatusOr<CertFiles> MakeCert(const CertFiles& ca, const std::string& dir,
                                   const std::string& name, CertUse use, int days,
                                   const std::string& subject_alt_names) {
  const std::string cnf = absl::StrCat(dir, "/", name, ".cnf");
  const std::string csr = absl::StrCat(dir, "/", name, ".csr");
  WriteFile(cnf, OpensslConfig(name, subject_alt_names));
  CertFiles leaf{absl::StrCat(dir, "/", name, ".pem"), absl::StrCat(dir, "/", name, ".key")};
  if (absl::Status s = Run({"req", "-new", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", leaf.key, "-out", csr,
                            "-config", cnf});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Run({"x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey",
                            ca.key, "-set_serial", RandomSerial(), "-days", absl::StrCat(days),
                            "-out", leaf.cert, "-extfile", cnf, "-extensions",
                            use == CertUse::kServer ? "server_ext" : "client_ext"});
      !s.ok()) {
    return s;
  }
  return leaf;
}

void ConcatFiles(const std::vector<std::string>& inputs, const std::string& path) {
  std::string all;
  for (const std::string& in : inputs) all += ReadFile(in);
  WriteFile(path, all);
}

void ReplaceFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".new";
  WriteFile(tmp, contents);
  std::rename(tmp.c_str(), path.c_str());
}

absl::StatusOr<std::string> CertNotAfter(const std::string& pem_path) {
  return ParseEndDate(RunCommand({Openssl(), "x509", "-in", pem_path, "-noout", "-enddate"}),
                      pem_path);
}

absl::StatusOr<std::string> ServedCertNotAfter(const std::string& address) {
  return ParseEndDate(
      RunCommand({"/bin/sh", "-c",
                  absl::StrCat(Openssl(), " s_client -connect ", address,
                               " -servername localhost -alpn h2 </dev/null 2>/dev/null | ",
                               Openssl(), " x509 -noout -enddate")},
                 absl::Seconds(20)),
      address);
}

}  // namespace amaters::server::testing
