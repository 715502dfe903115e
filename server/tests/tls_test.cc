// End to end, TLS (`[network] tls_enabled, tls_cert, tls_key, tls_ca, require_client_cert`) on
// real amaters-server processes with throwaway certificates made by the openssl command line:
// TLS clients and amaters-ctl; client certificates required and checked against tls_ca;
// a certificate rotated on disk plus SIGHUP is served to new connections while an open one
// keeps working; a bad certificate file stops the start with an error naming it; three nodes
// with mutual TLS between peers, and a node whose certificate another CA signed is refused.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"
#include "server/testing/certs.h"
#include "server/testing/cluster.h"
#include "server/testing/process.h"
#include "server/tls.h"

namespace amaters::server::testing {
namespace {

using ::testing::HasSubstr;

// A TLS client that trusts the CAs in `ca_file`, presenting `client` when given.
std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(
    const std::string& ca_file, const std::optional<CertFiles>& client = std::nullopt) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadFile(ca_file);
  if (client) {
    o.pem_cert_chain = ReadFile(client->cert);
    o.pem_private_key = ReadFile(client->key);
  }
  return grpc::SslCredentials(o);
}

std::string TlsToml(const std::string& cert, const std::string& key, const std::string& ca = "",
                    bool require_client_cert = false) {
  return absl::StrCat("[network]\ntls_enabled = true\ntls_cert = \"", cert, "\"\ntls_key = \"",
                      key, "\"\n", ca.empty() ? "" : absl::StrCat("tls_ca = \"", ca, "\"\n"),
                      require_client_cert ? "require_client_cert = true\n" : "");
}

// Waits until node i accepts TCP connections on its client port. Tests open their gRPC
// channels after this: a channel whose first connection attempt was refused reports
// TRANSIENT_FAILURE until it connects, so its calls fail at once without driving the next
// attempt, which then advances only with gRPC's 5-second backup poller (a TLS connection
// needs several such steps).
absl::Status WaitListening(TestCluster& cluster, int i, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!cluster.Running(i)) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", i + 1, " exited; its log:\n", cluster.Log(i)));
    }
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(cluster.node(i).client_port));
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (ok) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("node ", i + 1, " does not listen"));
}

// Polls Maintenance.Status through `client` until it reports a leader.
absl::Status WaitReady(TestCluster& cluster, int i, EtcdClient& client,
                       absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::UnavailableError("never asked");
  while (absl::Now() < deadline) {
    if (!cluster.Running(i)) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", i + 1, " exited; its log:\n", cluster.Log(i)));
    }
    absl::StatusOr<etcdserverpb::StatusResponse> s = client.Status();
    if (s.ok() && s->leader() != 0) return absl::OkStatus();
    last = s.ok() ? absl::UnavailableError("no leader yet") : s.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("node ", i + 1, " not ready: ", last.ToString(), "\nlog:\n", cluster.Log(i)));
}

// The certificate a new connection to `address` gets has notAfter `want` (polled: gRPC
// re-reads the files every second).
absl::Status WaitServedNotAfter(const std::string& address, const std::string& want,
                                absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::string> got;
  while (absl::Now() < deadline) {
    got = ServedCertNotAfter(address);
    if (got.ok() && *got == want) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "served notAfter is ", got.ok() ? *got : got.status().ToString(), ", want ", want));
}

// GET http://127.0.0.1:port/path (the admin port is plain HTTP); the body.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTempDir("tls-certs");
    absl::StatusOr<CertFiles> ca = MakeCa(dir_, "ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *ca;
    absl::StatusOr<CertFiles> other_ca = MakeCa(dir_, "other-ca");
    ASSERT_TRUE(other_ca.ok()) << other_ca.status();
    other_ca_ = *other_ca;
    absl::StatusOr<CertFiles> server = MakeCert(ca_, dir_, "server", CertUse::kServer, 30);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
  }

  // A copy of the server's certificate and key in a directory of its own, which a test may
  // replace file by file as an operator would.
  CertFiles LiveCopyOfServerCert(const std::string& name) {
    const std::string dir = NewTempDir(name);
    const CertFiles live{dir + "/server.pem", dir + "/server.key"};
    WriteFile(live.cert, ReadFile(server_.cert));
    WriteFile(live.key, ReadFile(server_.key));
    return live;
  }

  CommandResult Ctl(const std::string& endpoint, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {Runfile("server/ctl/amaters-ctl"), "--endpoints=" + endpoint};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  std::string dir_;
  CertFiles ca_, other_ca_, server_;
};

TEST_F(TlsTest, ClientsWithTheCaConnectAndPlaintextIsRefused) {
  TestCluster cluster(1, "tls-basic", TlsToml(server_.cert, server_.key));
  ASSERT_TRUE(cluster.Start(0).ok());
  ASSERT_TRUE(WaitListening(cluster, 0).ok()) << cluster.Log(0);
  const std::string address = cluster.client_address(0);
  EtcdClient tls(address, TlsCredentials(ca_.cert));
  absl::Status ready = WaitReady(cluster, 0, tls);
  ASSERT_TRUE(ready.ok()) << ready;

  ASSERT_TRUE(tls.Put("fruit", "apple").ok());
  absl::StatusOr<std::optional<std::string>> got = tls.Get("fruit");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value_or("<none>"), "apple");

  // Plaintext on a TLS port, and TLS that does not trust the server's CA, both fail.
  EtcdClient plaintext(address);
  absl::Status s = plaintext.Put("fruit", "pear");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EtcdClient wrong_ca(address, TlsCredentials(other_ca_.cert));
  s = wrong_ca.Put("fruit", "pear");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;

  // The served certificate is the configured one.
  absl::StatusOr<std::string> want = CertNotAfter(server_.cert);
  ASSERT_TRUE(want.ok()) << want.status();
  EXPECT_EQ(ServedCertNotAfter(address).value_or("<error>"), *want);

  // amaters-ctl: --cacert turns TLS on (https:// endpoints too); without it, it fails.
  CommandResult r = Ctl(address, {"--cacert=" + ca_.cert, "put", "veg", "leek"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "OK\n");
  r = Ctl("https://" + address, {"--cacert=" + ca_.cert, "get", "veg"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "veg\nleek\n");
  r = Ctl(address, {"--cacert=" + ca_.cert, "get", "fruit"});
  EXPECT_EQ(r.out, "fruit\napple\n");
  r = Ctl(address, {"--timeout=3s", "get", "veg"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = Ctl(address, {"--timeout=3s", "--cacert=" + other_ca_.cert, "get", "veg"});
  EXPECT_NE(r.exit_code, 0) << r.out;
}

TEST_F(TlsTest, RequireClientCertRefusesClientsWithoutACertificateTheCaSigned) {
  absl::StatusOr<CertFiles> alice = MakeCert(ca_, dir_, "alice", CertUse::kClient);
  ASSERT_TRUE(alice.ok()) << alice.status();
  absl::StatusOr<CertFiles> mallory = MakeCert(other_ca_, dir_, "mallory", CertUse::kClient);
  ASSERT_TRUE(mallory.ok()) << mallory.status();
  TestCluster cluster(1, "tls-mtls", TlsToml(server_.cert, server_.key, ca_.cert, true));
  ASSERT_TRUE(cluster.Start(0).ok());
  ASSERT_TRUE(WaitListening(cluster, 0).ok()) << cluster.Log(0);
  const std::string address = cluster.client_address(0);

  EtcdClient with_cert(address, TlsCredentials(ca_.cert, *alice));
  absl::Status ready = WaitReady(cluster, 0, with_cert);
  ASSERT_TRUE(ready.ok()) << ready;
  ASSERT_TRUE(with_cert.Put("k", "v").ok());
  EXPECT_EQ(with_cert.Get("k").value_or("<error>").value_or("<none>"), "v");

  EtcdClient no_cert(address, TlsCredentials(ca_.cert));
  absl::Status s = no_cert.Put("k", "no-cert");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_FALSE(no_cert.Get("k").ok());
  EtcdClient foreign_cert(address, TlsCredentials(ca_.cert, *mallory));
  s = foreign_cert.Put("k", "foreign");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EtcdClient plaintext(address);
  EXPECT_FALSE(plaintext.Put("k", "plain").ok());
  // None of them got through.
  EXPECT_EQ(with_cert.Get("k").value_or("<error>").value_or("<none>"), "v");

  CommandResult r = Ctl(address, {"--cacert=" + ca_.cert, "--cert=" + alice->cert,
                                  "--key=" + alice->key, "get", "k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "k\nv\n");
  r = Ctl(address, {"--timeout=3s", "--cacert=" + ca_.cert, "get", "k"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = Ctl(address, {"--timeout=3s", "--cacert=" + ca_.cert, "--cert=" + mallory->cert,
                    "--key=" + mallory->key, "get", "k"});
  EXPECT_NE(r.exit_code, 0) << r.out;
}

// An operator replaces the certificate and key files (write a temporary file, rename it over
// the old one) and sends SIGHUP: new connections get the new certificate, and a connection
// opened before keeps working. The new certificate comes from another CA so that the open
// connection's survival is visible: a client that trusts only the first CA can still use it,
// while a new connection with the same trust fails.
TEST_F(TlsTest, RotatedCertificateIsServedToNewConnectionsAfterSighup) {
  absl::StatusOr<CertFiles> next = MakeCert(other_ca_, dir_, "server-next", CertUse::kServer, 60);
  ASSERT_TRUE(next.ok()) << next.status();
  absl::StatusOr<std::string> old_end = CertNotAfter(server_.cert);
  absl::StatusOr<std::string> new_end = CertNotAfter(next->cert);
  ASSERT_TRUE(old_end.ok() && new_end.ok());
  ASSERT_NE(*old_end, *new_end);

  const CertFiles live = LiveCopyOfServerCert("tls-live");
  TestCluster cluster(1, "tls-rotate", TlsToml(live.cert, live.key));
  ASSERT_TRUE(cluster.Start(0).ok());
  ASSERT_TRUE(WaitListening(cluster, 0).ok()) << cluster.Log(0);
  const std::string address = cluster.client_address(0);
  EtcdClient before(address, TlsCredentials(ca_.cert));
  absl::Status ready = WaitReady(cluster, 0, before);
  ASSERT_TRUE(ready.ok()) << ready;
  ASSERT_TRUE(before.Put("k", "1").ok());
  EXPECT_EQ(ServedCertNotAfter(address).value_or("<error>"), *old_end);

  ReplaceFileAtomically(live.key, ReadFile(next->key));
  ReplaceFileAtomically(live.cert, ReadFile(next->cert));
  // Until SIGHUP the server keeps its certificate (it serves staged copies, server/tls.h),
  // however long the files on disk have been new.
  absl::SleepFor(absl::Seconds(2 * kCertRefreshSeconds + 1));
  EXPECT_EQ(ServedCertNotAfter(address).value_or("<error>"), *old_end);
  cluster.node(0).process->Signal(SIGHUP);
  absl::Status served = WaitServedNotAfter(address, *new_end);
  ASSERT_TRUE(served.ok()) << served << "\nlog:\n" << cluster.Log(0);
  EXPECT_THAT(cluster.Log(0), HasSubstr("SIGHUP"));

  // The connection opened before the rotation still works (it would fail to reconnect: the
  // new certificate is not signed by the only CA this client trusts).
  ASSERT_TRUE(before.Put("k", "2").ok());
  EXPECT_EQ(before.Get("k").value_or("<error>").value_or("<none>"), "2");
  // New connections get the new certificate.
  EtcdClient old_trust(address, TlsCredentials(ca_.cert));
  EXPECT_EQ(old_trust.Put("k", "3").code(), absl::StatusCode::kUnavailable);
  EtcdClient new_trust(address, TlsCredentials(other_ca_.cert));
  ASSERT_TRUE(new_trust.Put("k", "4").ok());
  EXPECT_EQ(before.Get("k").value_or("<error>").value_or("<none>"), "4");
  EXPECT_TRUE(cluster.Running(0));
}

// Files that are broken when SIGHUP arrives are refused and the running certificate stays in
// service; once they are fixed, the next SIGHUP installs them.
TEST_F(TlsTest, BrokenFilesOnSighupKeepTheRunningCertificate) {
  absl::StatusOr<CertFiles> next = MakeCert(ca_, dir_, "server-next", CertUse::kServer, 120);
  ASSERT_TRUE(next.ok()) << next.status();
  const CertFiles live = LiveCopyOfServerCert("tls-broken");
  TestCluster cluster(1, "tls-broken", TlsToml(live.cert, live.key));
  ASSERT_TRUE(cluster.Start(0).ok());
  ASSERT_TRUE(WaitListening(cluster, 0).ok()) << cluster.Log(0);
  const std::string address = cluster.client_address(0);
  EtcdClient client(address, TlsCredentials(ca_.cert));
  absl::Status ready = WaitReady(cluster, 0, client);
  ASSERT_TRUE(ready.ok()) << ready;
  const std::string old_end = CertNotAfter(server_.cert).value();

  // A half-done rotation: the new certificate with the old key.
  ReplaceFileAtomically(live.cert, ReadFile(next->cert));
  cluster.node(0).process->Signal(SIGHUP);
  absl::SleepFor(absl::Seconds(2 * kCertRefreshSeconds + 1));
  EXPECT_THAT(cluster.Log(0), HasSubstr("TLS files refused"));
  EXPECT_EQ(ServedCertNotAfter(address).value_or("<error>"), old_end);
  EtcdClient fresh(address, TlsCredentials(ca_.cert));
  EXPECT_TRUE(fresh.Put("k", "v").ok());

  ReplaceFileAtomically(live.key, ReadFile(next->key));
  cluster.node(0).process->Signal(SIGHUP);
  absl::Status served = WaitServedNotAfter(address, CertNotAfter(next->cert).value());
  ASSERT_TRUE(served.ok()) << served << "\nlog:\n" << cluster.Log(0);
  EXPECT_TRUE(cluster.Running(0));
}

// tls_cert and tls_key may be one file holding both; one rename then replaces the pair at once.
TEST_F(TlsTest, KeyAndCertificateInOneFileRotateWithOneRename) {
  absl::StatusOr<CertFiles> next = MakeCert(ca_, dir_, "server-next", CertUse::kServer, 90);
  ASSERT_TRUE(next.ok()) << next.status();
  const std::string identity = NewTempDir("tls-one-file") + "/identity.pem";
  ConcatFiles({server_.key, server_.cert}, identity);
  TestCluster cluster(1, "tls-one-file", TlsToml(identity, identity));
  ASSERT_TRUE(cluster.Start(0).ok());
  ASSERT_TRUE(WaitListening(cluster, 0).ok()) << cluster.Log(0);
  const std::string address = cluster.client_address(0);
  EtcdClient client(address, TlsCredentials(ca_.cert));
  absl::Status ready = WaitReady(cluster, 0, client);
  ASSERT_TRUE(ready.ok()) << ready;
  EXPECT_EQ(ServedCertNotAfter(address).value_or("<error>"), CertNotAfter(server_.cert).value());

  ReplaceFileAtomically(identity, ReadFile(next->key) + ReadFile(next->cert));
  cluster.node(0).process->Signal(SIGHUP);
  absl::Status served = WaitServedNotAfter(address, CertNotAfter(next->cert).value());
  ASSERT_TRUE(served.ok()) << served << "\nlog:\n" << cluster.Log(0);
  EtcdClient fresh(address, TlsCredentials(ca_.cert));
  EXPECT_TRUE(fresh.Put("k", "v").ok());
  EXPECT_TRUE(client.Put("k", "w").ok());
}

// What the SIGHUP handler logs: the leaf's names and validity, the chain and CA sizes.
TEST_F(TlsTest, InspectTlsFilesDescribesTheCertificate) {
  Config config;
  config.network.tls_enabled = true;
  config.network.tls_cert = dir_ + "/chain.pem";
  config.network.tls_key = server_.key;
  config.network.tls_ca = dir_ + "/both-cas.pem";
  ConcatFiles({server_.cert, ca_.cert}, config.network.tls_cert);
  ConcatFiles({ca_.cert, other_ca_.cert}, config.network.tls_ca);
  const absl::Time now = absl::Now();
  absl::StatusOr<TlsFilesInfo> info = InspectTlsFiles(config);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->subject, "CN=server");
  EXPECT_EQ(info->issuer, "CN=ca");
  EXPECT_EQ(info->chain_length, 2);
  EXPECT_EQ(info->ca_certificates, 2);
  EXPECT_LT(absl::AbsDuration(info->not_before - now), absl::Minutes(5));
  EXPECT_LT(absl::AbsDuration(info->not_after - (now + absl::Hours(24 * 30))), absl::Minutes(5));
  EXPECT_EQ(FormatTlsTime(absl::FromUnixSeconds(1777636800)), "2026-05-01T12:00:00Z");
  EXPECT_TRUE(CheckTlsFiles(config).ok());

  config.network.tls_enabled = false;  // nothing to check
  EXPECT_TRUE(CheckTlsFiles(config).ok());
  EXPECT_EQ(InspectTlsFiles(config).status().code(), absl::StatusCode::kFailedPrecondition);
}

// A certificate or key that cannot be used stops the start, with an error naming the key and
// the file.
TEST_F(TlsTest, BadCertificateFilesFailTheStart) {
  absl::StatusOr<CertFiles> other = MakeCert(ca_, dir_, "other", CertUse::kServer);
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string garbage = dir_ + "/garbage.pem";
  WriteFile(garbage, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n");
  const std::string empty = dir_ + "/empty.pem";
  WriteFile(empty, "");
  const std::string bad_key = dir_ + "/bad.key";
  WriteFile(bad_key, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
  const std::string encrypted_key = dir_ + "/encrypted.key";
  WriteFile(encrypted_key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nbm90IGEga2V5\n-----END ENCRYPTED PRIVATE KEY-----\n");
  struct Case {
    std::string toml;
    std::string error;
  };
  const std::vector<Case> cases = {
      {TlsToml(garbage, server_.key),
       absl::StrCat("[network] tls_cert = \"", garbage, "\": certificate 1 cannot be parsed (openssl: ")},
      {TlsToml(empty, server_.key),
       absl::StrCat("[network] tls_cert = \"", empty, "\": no PEM certificate in the file")},
      {TlsToml(server_.cert, server_.cert),
       absl::StrCat("[network] tls_key = \"", server_.cert, "\": no PEM private key in the file")},
      {TlsToml(server_.cert, bad_key),
       absl::StrCat("[network] tls_key = \"", bad_key, "\": the private key cannot be parsed (openssl: ")},
      {TlsToml(server_.cert, encrypted_key),
       absl::StrCat("[network] tls_key = \"", encrypted_key,
                    "\": the private key is encrypted; give it without a passphrase")},
      {TlsToml(server_.cert, other->key),
       absl::StrCat("[network] tls_key = \"", other->key,
                    "\": not the private key of the certificate in [network] tls_cert = \"",
                    server_.cert, "\"")},
      {TlsToml(server_.cert, dir_ + "/missing.key"),
       absl::StrCat("[network] tls_key = \"", dir_,
                    "/missing.key\": cannot read: No such file or directory")},
      {TlsToml(server_.cert, server_.key, server_.key),
       absl::StrCat("[network] tls_ca = \"", server_.key, "\": no PEM certificate in the file")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.toml);
    TestCluster cluster(1, "tls-bad", c.toml);
    ASSERT_TRUE(cluster.Start(0).ok());
    std::optional<int> code = cluster.node(0).process->Wait(absl::Seconds(20));
    ASSERT_TRUE(code.has_value()) << "still running:\n" << cluster.Log(0);
    EXPECT_EQ(*code, 1);
    EXPECT_THAT(cluster.Log(0), HasSubstr("amaters-server: " + c.error)) << cluster.Log(0);
  }
}

// Three nodes with mutual TLS between peers (every node's certificate signed by the cluster
// CA, tls_ca = that CA). Then a follower comes back with a certificate another CA signed: the
// others refuse it (and it refuses them), so it never hears of the leader nor of new writes,
// while the other two keep serving.
TEST_F(TlsTest, PeersUseMutualTlsAndRefuseACertificateFromAnotherCa) {
  // Relative paths resolve against each node's working directory: one [network] section
  // serves every node, each with its own certificate in <node dir>/tls/.
  TestCluster cluster(3, "tls-peers", TlsToml("tls/node.pem", "tls/node.key", "tls/ca.pem"));
  for (int i = 0; i < 3; ++i) {
    const std::string tls_dir = cluster.node(i).dir + "/tls";
    ASSERT_EQ(mkdir(tls_dir.c_str(), 0700), 0);
    absl::StatusOr<CertFiles> cert = MakeCert(ca_, tls_dir, "node", CertUse::kServer);
    ASSERT_TRUE(cert.ok()) << cert.status();
    WriteFile(tls_dir + "/ca.pem", ReadFile(ca_.cert));
  }
  // Clients trust both CAs: they must reach the odd node once it has its foreign certificate.
  const std::string both_cas = dir_ + "/both-cas.pem";
  ConcatFiles({ca_.cert, other_ca_.cert}, both_cas);
  auto client = [&](int i) {
    return std::make_unique<EtcdClient>(cluster.client_address(i), TlsCredentials(both_cas));
  };
  ASSERT_TRUE(cluster.StartAll().ok());
  std::vector<std::unique_ptr<EtcdClient>> clients;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WaitListening(cluster, i).ok()) << cluster.Log(i);
    clients.push_back(client(i));
  }
  for (int i = 0; i < 3; ++i) {
    absl::Status ready = WaitReady(cluster, i, *clients[i]);
    ASSERT_TRUE(ready.ok()) << ready;
  }
  absl::StatusOr<etcdserverpb::StatusResponse> status = clients[0]->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  const int leader = static_cast<int>(status->leader()) - 1;
  const int follower = (leader + 1) % 3;
  const int odd = (leader + 2) % 3;  // the other follower, restarted with a foreign certificate
  const int kept[2] = {leader, follower};

  // A write through a follower is forwarded; every node reads it.
  ASSERT_TRUE(clients[follower]->Put("one", "1").ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(clients[i]->Get("one").value_or("<error>").value_or("<none>"), "1") << i;
  }

  // The odd node comes back with a certificate from another CA (its tls_ca still the cluster
  // CA, so it would trust the others: they are the ones who refuse it).
  cluster.Kill(odd);
  std::map<int, size_t> log_offset;
  for (int i : kept) log_offset[i] = cluster.Log(i).size();
  const std::string odd_tls = cluster.node(odd).dir + "/tls";
  absl::StatusOr<CertFiles> foreign = MakeCert(other_ca_, dir_, "foreign", CertUse::kServer);
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  ReplaceFileAtomically(odd_tls + "/node.key", ReadFile(foreign->key));
  ReplaceFileAtomically(odd_tls + "/node.pem", ReadFile(foreign->cert));
  ASSERT_TRUE(cluster.Start(odd).ok());
  ASSERT_TRUE(WaitListening(cluster, odd).ok()) << cluster.Log(odd);
  clients[odd] = client(odd);

  // The other two still form a majority and take writes, through the leader or the follower.
  ASSERT_TRUE(clients[leader]->Put("two", "2").ok());
  ASSERT_TRUE(clients[follower]->Put("three", "3").ok());
  EXPECT_EQ(clients[leader]->Get("three").value_or("<error>").value_or("<none>"), "3");
  EXPECT_EQ(clients[follower]->Get("two").value_or("<error>").value_or("<none>"), "2");

  // The odd node answers its clients but never learns of a leader nor of the new writes.
  const absl::Time until = absl::Now() + absl::Seconds(3);
  int odd_answers = 0;
  while (absl::Now() < until) {
    absl::StatusOr<etcdserverpb::StatusResponse> s = clients[odd]->Status();
    if (s.ok()) {
      ++odd_answers;
      EXPECT_EQ(s->leader(), 0u);
    }
    absl::StatusOr<std::optional<std::string>> two =
        clients[odd]->Get("two", /*serializable=*/true);
    if (two.ok()) {
      EXPECT_FALSE(two->has_value());
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_GT(odd_answers, 0) << cluster.Log(odd);
  EXPECT_EQ(
      clients[odd]->Get("one", /*serializable=*/true).value_or("<error>").value_or("<none>"),
      "1");  // what it had before the restart

  // The refusals are visible. The other two fail every handshake with the odd node (as
  // clients dialing it, and as servers it dials) and gRPC logs each; the leader reports it not
  // connected. The odd node cannot reach them.
  const std::string odd_id = absl::StrCat(odd + 1);
  for (int i : kept) {
    const std::string log = cluster.Log(i).substr(log_offset[i]);
    EXPECT_THAT(log, HasSubstr("certificate verify failed")) << "node " << i + 1 << ":\n" << log;
  }
  EXPECT_THAT(HttpGet(cluster.node(leader).admin_port, "/metrics"),
              HasSubstr(absl::StrCat("amaters_peer_connected{peer=\"", odd_id, "\"} 0")));
  EXPECT_THAT(cluster.Log(odd),
              HasSubstr(absl::StrCat("peer unreachable peer=", leader + 1)));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(cluster.Running(i)) << i;
}

// A node dialing a peer checks that the peer's certificate names the host of its
// cluster.peers entry: certificates signed by the right CA but naming another host are refused.
TEST_F(TlsTest, PeerCertificateMustNameThePeerHost) {
  TestCluster cluster(2, "tls-names", TlsToml("tls/node.pem", "tls/node.key", ca_.cert));
  for (int i = 0; i < 2; ++i) {
    const std::string tls_dir = cluster.node(i).dir + "/tls";
    ASSERT_EQ(mkdir(tls_dir.c_str(), 0700), 0);
    absl::StatusOr<CertFiles> cert =
        MakeCert(ca_, tls_dir, "node", CertUse::kServer, 30, "DNS:node.example");
    ASSERT_TRUE(cert.ok()) << cert.status();
  }
  ASSERT_TRUE(cluster.StartAll().ok());
  absl::SleepFor(absl::Seconds(3));  // six election timeouts
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(cluster.Running(i)) << cluster.Log(i);
    EXPECT_THAT(HttpGet(cluster.node(i).admin_port, "/status"), HasSubstr("\"leader_id\":0,"));
    // gRPC's log of the failed check (amaters logs only the first failure to reach a peer).
    EXPECT_THAT(cluster.Log(i), HasSubstr("No match found for server name: 127.0.0.1"))
        << cluster.Log(i);
  }
}

}  // namespace
}  // namespace amaters::server::testing
