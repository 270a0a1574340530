#include "proxy/tls/server_tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/tls_test_util.h"

namespace sluice {
namespace {

// A self-signed P-256 certificate for `names` (DNS SANs), written to files in a temp dir.
struct TestCert {
  std::string cert_file, key_file;
};

TestCert MakeCert(const std::string& dir, const std::string& stem,
                  const std::vector<std::string>& names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = SelfSignedCert(key, stem, names);
  TestCert out{dir + "/" + stem + ".crt", dir + "/" + stem + ".key"};
  FILE* f = fopen(out.cert_file.c_str(), "w");
  PEM_write_X509(f, x);
  fclose(f);
  f = fopen(out.key_file.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

class ServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-tls-XXXXXX";
    dir_ = mkdtemp(tmpl);
    main_ = MakeCert(dir_, "main", {"localhost"});
    other_ = MakeCert(dir_, "other", {"a.test", "*.b.test"});
  }
  void TearDown() override {
    std::error_code ignored;  // a temporary directory left behind fails nothing
    std::filesystem::remove_all(dir_, ignored);
  }

  // Runs `client` against a new session of `server` over a pair of memory BIOs until both are
  // done (the client reading takes in a TLS 1.3 ticket); returns the server side.
  static SSL* HandshakeInMemory(const ServerTlsContext& server, SSL* client) {
    SSL_set_connect_state(client);
    SSL* srv = server.NewSession();
    BIO *a, *b;
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(client, a, a);
    SSL_set_bio(srv, b, b);
    char byte;
    for (int i = 0; i < 20; ++i) {
      SSL_do_handshake(client);
      SSL_do_handshake(srv);
      SSL_read(client, &byte, 1);
    }
    return srv;
  }

  // A full handshake in memory: which certificate (CN) the client got and the ALPN result.
  std::pair<std::string, std::string> Handshake(const ServerTlsContext& server, const char* sni,
                                                const char* alpn) {
    SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
    SSL* client = SSL_new(client_ctx);
    if (sni) SSL_set_tlsext_host_name(client, sni);
    if (alpn) {
      std::string wire;
      for (std::string_view p : {std::string_view(alpn), std::string_view("http/1.1")}) {
        wire.push_back(static_cast<char>(p.size()));
        wire.append(p);
      }
      SSL_set_alpn_protos(client, reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned>(wire.size()));
    }
    SSL* srv = HandshakeInMemory(server, client);
    std::string cn;
    if (X509* peer = SSL_get1_peer_certificate(client)) {
      char buf[256];
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof(buf));
      cn = buf;
      X509_free(peer);
    }
    const unsigned char* proto = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(client, &proto, &len);
    std::string chosen(reinterpret_cast<const char*>(proto), len);
    SSL_free(client);
    SSL_free(srv);
    SSL_CTX_free(client_ctx);
    return {cn, chosen};
  }

  // A handshake with `server` offering `session` (null: none): the session it ends with, and
  // whether it resumed the one offered.
  std::pair<SSL_SESSION*, bool> Connect(const ServerTlsContext& server, SSL_SESSION* session) {
    SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
    SSL* client = SSL_new(client_ctx);
    SSL_set_tlsext_host_name(client, "localhost");
    if (session) SSL_set_session(client, session);
    SSL* srv = HandshakeInMemory(server, client);
    std::pair<SSL_SESSION*, bool> out{SSL_get1_session(client), SSL_session_reused(client) == 1};
    // As after a close_notify: freeing a connection that did not shut down would mark its
    // session not resumable.
    SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(client);
    SSL_free(srv);
    SSL_CTX_free(client_ctx);
    return out;
  }
  // A ticket from `server` (a full handshake); free it with SSL_SESSION_free.
  SSL_SESSION* TicketFrom(const ServerTlsContext& server) { return Connect(server, nullptr).first; }
  bool Resumes(const ServerTlsContext& server, SSL_SESSION* ticket) {
    auto [session, resumed] = Connect(server, ticket);
    SSL_SESSION_free(session);
    return resumed;
  }
  bool ResumesOn(const ServerTlsContext& first, const ServerTlsContext& second) {
    SSL_SESSION* ticket = TicketFrom(first);
    bool resumed = Resumes(second, ticket);
    SSL_SESSION_free(ticket);
    return resumed;
  }

  std::string KeyFile(const std::string& stem, size_t size = 80) {
    std::string path = dir_ + "/" + stem + ".ticket";
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(std::rand());
    FILE* f = fopen(path.c_str(), "w");
    fwrite(bytes.data(), 1, bytes.size(), f);
    fclose(f);
    chmod(path.c_str(), 0600);
    return path;
  }

  ListenerTlsConfig Config() {
    ListenerTlsConfig config;
    config.certificates = {{main_.cert_file, main_.key_file, ""},
                           {other_.cert_file, other_.key_file, ""}};
    return config;
  }

  std::string dir_;
  TestCert main_, other_;
};

TEST_F(ServerTlsTest, SniPicksExactWildcardOrDefault) {
  auto context = ServerTlsContext::Create(Config(), "sni", true);
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ((*context)->names()[1], (std::vector<std::string>{"a.test", "*.b.test"}));
  EXPECT_EQ(Handshake(**context, "localhost", nullptr).first, "main");
  EXPECT_EQ(Handshake(**context, "a.test", nullptr).first, "other");
  EXPECT_EQ(Handshake(**context, "x.B.test", nullptr).first, "other");
  EXPECT_EQ(Handshake(**context, "y.x.b.test", nullptr).first, "main");  // one label only
  EXPECT_EQ(Handshake(**context, nullptr, nullptr).first, "main");
}

TEST_F(ServerTlsTest, AlpnPrefersH2OnlyWhenTheListenerSpeaksIt) {
  auto h2 = ServerTlsContext::Create(Config(), "alpn", true);
  auto h1 = ServerTlsContext::Create(Config(), "alpn1", false);
  ASSERT_TRUE(h2.ok() && h1.ok());
  EXPECT_EQ(Handshake(**h2, "localhost", "h2").second, "h2");
  EXPECT_EQ(Handshake(**h1, "localhost", "h2").second, "http/1.1");
  EXPECT_EQ(Handshake(**h2, "localhost", "spdy/3").second, "http/1.1");
}

TEST_F(ServerTlsTest, ContextOutlivesItsOwnerWhileASessionUsesIt) {
  auto context = ServerTlsContext::Create(Config(), "life", true);
  ASSERT_TRUE(context.ok());
  SSL* session = (*context)->NewSession();
  context->reset();  // a reload replaced it; the session still works on its contexts
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(client_ctx);
  SSL_set_tlsext_host_name(client, "a.test");
  SSL_set_connect_state(client);
  BIO *a, *b;
  BIO_new_bio_pair(&a, 0, &b, 0);
  SSL_set_bio(client, a, a);
  SSL_set_bio(session, b, b);
  int done = 0;
  for (int i = 0; i < 20 && done != 2; ++i) {
    done = (SSL_do_handshake(client) == 1) + (SSL_do_handshake(session) == 1);
  }
  EXPECT_EQ(done, 2);
  SSL_free(client);
  SSL_free(session);
  SSL_CTX_free(client_ctx);
}

TEST_F(ServerTlsTest, BadFilesAreErrorsThatNameThem) {
  ListenerTlsConfig config = Config();
  config.certificates[0].key_file = other_.key_file;
  auto mismatch = ServerTlsContext::Create(config, "bad", true);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("other.key"), std::string::npos);
  config = Config();
  config.certificates[0].cert_file = dir_ + "/missing.crt";
  EXPECT_NE(ServerTlsContext::Create(config, "bad", true).status().message().find("missing.crt"),
            std::string::npos);
  config = Config();
  config.certificates[0].ocsp_file = main_.cert_file;  // PEM, not a DER OCSP response
  EXPECT_NE(ServerTlsContext::Create(config, "bad", true).status().message().find("OCSP"),
            std::string::npos);
  config = Config();
  config.ciphers = "NOT-A-CIPHER";
  EXPECT_FALSE(ServerTlsContext::Create(config, "bad", true).ok());
}

TEST_F(ServerTlsTest, ResumesOnlyWhereTheTicketKeysAre) {
  auto a = ServerTlsContext::Create(Config(), "resume-a", true);
  auto b = ServerTlsContext::Create(Config(), "resume-b", true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(ResumesOn(**a, **a));
  EXPECT_FALSE(ResumesOn(**a, **b));  // each listener's own keys
  // TLS 1.3 tickets are for one use: every resumption brings a new one, so a client resumes
  // connection after connection.
  SSL_SESSION* ticket = TicketFrom(**a);
  for (int i = 0; i < 3; ++i) {
    auto [next, resumed] = Connect(**a, ticket);
    EXPECT_TRUE(resumed) << i;
    EXPECT_NE(next, ticket) << i;
    SSL_SESSION_free(ticket);
    ticket = next;
  }
  SSL_SESSION_free(ticket);
  ListenerTlsConfig off = Config();
  off.session_tickets = false;
  auto c = ServerTlsContext::Create(off, "resume-c", true);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(ResumesOn(**c, **c));
}

TEST_F(ServerTlsTest, TicketKeyFilesLetAnotherProcessResume) {
  // Two listeners standing for two nodes with the same files; a third with another key.
  ListenerTlsConfig config = Config();
  config.ticket_key_files = {KeyFile("current"), KeyFile("previous")};
  auto a = ServerTlsContext::Create(config, "files-a", true);
  auto b = ServerTlsContext::Create(config, "files-b", true);
  ListenerTlsConfig other = Config();
  other.ticket_key_files = {KeyFile("other")};
  auto c = ServerTlsContext::Create(other, "files-c", true);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok()) << a.status() << b.status() << c.status();
  // Built, nothing changes yet: the keys are installed when the configuration is committed.
  EXPECT_EQ(TicketKeyRing::ForListener("files-a", absl::Hours(1))->source(),
            TicketKeyRing::Source::kOwn);
  EXPECT_FALSE(ResumesOn(**a, **b));
  for (auto* context : {&a, &b, &c}) (**context)->ApplyTicketKeys();
  EXPECT_TRUE(ResumesOn(**a, **b));
  EXPECT_TRUE(ResumesOn(**b, **a));
  EXPECT_FALSE(ResumesOn(**a, **c));
  EXPECT_EQ(TicketKeyRing::ForListener("files-a", absl::Hours(1))->source(),
            TicketKeyRing::Source::kFiles);
}

TEST_F(ServerTlsTest, AReplacedTicketKeyFileStillDecryptsAfterTheReload) {
  ListenerTlsConfig config = Config();
  config.ticket_key_files = {KeyFile("first")};
  auto before = ServerTlsContext::Create(config, "reloaded", true);
  ASSERT_TRUE(before.ok());
  (*before)->ApplyTicketKeys();
  SSL_SESSION* old_ticket = TicketFrom(**before);
  // The reload: a new file; the old key is listed nowhere but still opens tickets.
  ListenerTlsConfig rotated = Config();
  rotated.ticket_key_files = {KeyFile("second")};
  auto after = ServerTlsContext::Create(rotated, "reloaded", true);
  ASSERT_TRUE(after.ok());
  (*after)->ApplyTicketKeys();
  EXPECT_TRUE(Resumes(**after, old_ticket));
  EXPECT_TRUE(Resumes(**before, old_ticket));  // connections under the old context too
  SSL_SESSION_free(old_ticket);
  ListenerTlsConfig peer = Config();
  peer.ticket_key_files = rotated.ticket_key_files;
  auto other = ServerTlsContext::Create(peer, "reloaded-peer", true);
  ASSERT_TRUE(other.ok());
  (*other)->ApplyTicketKeys();
  EXPECT_TRUE(ResumesOn(**after, **other));  // new tickets are under the new key
  // Back to its own keys when the files go: the files' key still decrypts for a rotation.
  auto own = ServerTlsContext::Create(Config(), "reloaded", true);
  ASSERT_TRUE(own.ok());
  (*own)->ApplyTicketKeys();
  EXPECT_EQ(TicketKeyRing::ForListener("reloaded", absl::Hours(1))->source(),
            TicketKeyRing::Source::kOwn);
  EXPECT_FALSE(ResumesOn(**own, **other));
}

TEST_F(ServerTlsTest, ABadTicketKeyFileIsAnErrorAndTheKeysStay) {
  ListenerTlsConfig config = Config();
  config.ticket_key_files = {KeyFile("good")};
  auto good = ServerTlsContext::Create(config, "bad-keys", true);
  ASSERT_TRUE(good.ok());
  (*good)->ApplyTicketKeys();
  ListenerTlsConfig bad = Config();
  bad.ticket_key_files = {KeyFile("short", 48)};
  auto result = ServerTlsContext::Create(bad, "bad-keys", true);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("short.ticket"), std::string::npos);
  EXPECT_NE(result.status().message().find("80 bytes"), std::string::npos);
  bad.ticket_key_files = {dir_ + "/missing.ticket"};
  EXPECT_FALSE(ServerTlsContext::Create(bad, "bad-keys", true).ok());
  bad.ticket_key_files = {config.ticket_key_files[0], config.ticket_key_files[0]};
  EXPECT_FALSE(ServerTlsContext::Create(bad, "bad-keys", true).ok());
  // Built for a reload refused later (another part of the file was wrong): never applied.
  ListenerTlsConfig refused = Config();
  refused.ticket_key_files = {KeyFile("refused")};
  EXPECT_TRUE(ServerTlsContext::Create(refused, "bad-keys", true).ok());
  // Nothing changed: a peer with the good file still opens this listener's tickets.
  auto peer = ServerTlsContext::Create(config, "bad-keys-peer", true);
  ASSERT_TRUE(peer.ok());
  (*peer)->ApplyTicketKeys();
  EXPECT_TRUE(ResumesOn(**good, **peer));
}

TEST_F(ServerTlsTest, KeysInstalledFromTheFleetLetAnotherNodeResume) {
  auto a = ServerTlsContext::Create(Config(), "fleet-a", true);
  auto b = ServerTlsContext::Create(Config(), "fleet-b", true);
  ASSERT_TRUE(a.ok() && b.ok());
  absl::Time now = absl::Now();
  std::vector<TicketKey> keys;
  ASSERT_TRUE(AdvanceTicketKeys(&keys, now, absl::Hours(1), RandomTicketKey));
  for (const char* name : {"fleet-a", "fleet-b"}) {
    TicketKeyRing::ForListener(name, absl::Hours(1))
        ->Install(keys, TicketKeyRing::Source::kFleet, now, absl::Hours(1));
  }
  EXPECT_TRUE(ResumesOn(**a, **b));
  EXPECT_TRUE(ResumesOn(**b, **a));
}

TEST(TicketKeyRingTest, RotatesAndKeepsTwoOldKeysForDecryption) {
  TicketKeyRing ring(absl::Hours(1));
  absl::Time t = absl::FromUnixSeconds(1'000'000);
  TicketKey first = ring.Current(t);
  EXPECT_EQ(ring.Current(t + absl::Minutes(59)).name, first.name);
  TicketKey second = ring.Current(t + absl::Hours(1));
  EXPECT_NE(second.name, first.name);
  TicketKey found;
  bool renew = false;
  absl::Time later = t + absl::Hours(1);
  ASSERT_TRUE(ring.Find(first.name.data(), later, &found, &renew));
  EXPECT_TRUE(renew);  // still decrypts; the client gets a fresh ticket
  ASSERT_TRUE(ring.Find(second.name.data(), later, &found, &renew));
  EXPECT_FALSE(renew);
  ring.Current(t + absl::Hours(2));
  ring.Current(t + absl::Hours(3));
  EXPECT_FALSE(ring.Find(first.name.data(), t + absl::Hours(3), &found, &renew));  // gone
  EXPECT_EQ(ring.rotations(), 4u);
  EXPECT_EQ(ring.source(), TicketKeyRing::Source::kOwn);
  // A resumption is the first use after a rotation was due: the lookup rotates, and the ticket
  // it found is under the key before, so it is renewed.
  TicketKeyRing lone(absl::Hours(1));
  TicketKey only = lone.Current(t);
  ASSERT_TRUE(lone.Find(only.name.data(), t + absl::Hours(1), &found, &renew));
  EXPECT_EQ(found.name, only.name);
  EXPECT_TRUE(renew);
  EXPECT_EQ(lone.rotations(), 2u);
}

TicketKey KeyAt(absl::Time not_before) {
  absl::StatusOr<TicketKey> key = RandomTicketKey(not_before);
  EXPECT_TRUE(key.ok());
  return *key;
}

TEST(TicketKeyRingTest, InstalledKeysEncryptFromTheirTimeAndReplacedOnesDecryptForAWhile) {
  TicketKeyRing ring(absl::Hours(1));
  absl::Time t = absl::FromUnixSeconds(1'000'000);
  TicketKey own = ring.Current(t);
  TicketKey next = KeyAt(t + absl::Hours(1)), current = KeyAt(t - absl::Minutes(5));
  ring.Install({next, current}, TicketKeyRing::Source::kFleet, t, absl::Minutes(30));
  EXPECT_EQ(ring.source(), TicketKeyRing::Source::kFleet);
  EXPECT_EQ(ring.Current(t).name, current.name);  // the next one's time has not come
  EXPECT_EQ(ring.Current(t + absl::Hours(1)).name, next.name);
  EXPECT_EQ(ring.rotations(), 1u);  // installed keys never rotate by themselves
  TicketKey found;
  bool renew = false;
  ASSERT_TRUE(ring.Find(next.name.data(), t, &found, &renew));  // decrypts before it encrypts
  EXPECT_TRUE(renew);
  ASSERT_TRUE(ring.Find(own.name.data(), t + absl::Minutes(29), &found, &renew));
  EXPECT_TRUE(renew);
  EXPECT_FALSE(ring.Find(own.name.data(), t + absl::Minutes(30), &found, &renew));
  // A second install keeps what the first one kept, and the key it replaces.
  TicketKey newer = KeyAt(t);
  ring.Install({newer}, TicketKeyRing::Source::kFleet, t + absl::Minutes(1), absl::Minutes(30));
  EXPECT_EQ(ring.Current(t + absl::Minutes(1)).name, newer.name);
  EXPECT_TRUE(ring.Find(current.name.data(), t + absl::Minutes(2), &found, &renew));
  EXPECT_TRUE(ring.Find(own.name.data(), t + absl::Minutes(2), &found, &renew));
  EXPECT_FALSE(ring.Find(next.name.data(), t + absl::Minutes(2), &found, &renew));  // not kept
  // Back to its own keys: the installed one that encrypted still decrypts for a while.
  ring.MakeOwn(t + absl::Minutes(2), absl::Minutes(30));
  EXPECT_EQ(ring.source(), TicketKeyRing::Source::kOwn);
  EXPECT_NE(ring.Current(t + absl::Minutes(2)).name, newer.name);
  EXPECT_TRUE(ring.Find(newer.name.data(), t + absl::Minutes(3), &found, &renew));
  EXPECT_FALSE(ring.Find(newer.name.data(), t + absl::Minutes(33), &found, &renew));
}

TEST(TicketKeyRingTest, BeforeAnyInstalledKeysTimeTheRingStillEncrypts) {
  // A node whose clock is behind the leader's gets keys that all start later.
  TicketKeyRing ring(absl::Hours(1));
  absl::Time t = absl::FromUnixSeconds(1'000'000);
  TicketKey own = ring.Current(t);
  TicketKey early = KeyAt(t + absl::Seconds(2));
  ring.Install({early}, TicketKeyRing::Source::kFleet, t, absl::Hours(1));
  EXPECT_EQ(ring.Current(t).name, own.name);  // the key it had, kept
  ring.Install({early}, TicketKeyRing::Source::kFleet, t + absl::Hours(2), absl::Hours(1));
  EXPECT_EQ(ring.Current(t + absl::Seconds(1)).name, early.name);  // nothing else left
}

}  // namespace
}  // namespace sluice
