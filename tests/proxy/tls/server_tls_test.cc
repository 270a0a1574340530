#include "proxy/tls/server_tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// A self-signed P-256 certificate for `names` (DNS SANs), written to files in a temp dir.
struct TestCert {
  std::string cert_file, key_file;
};

TestCert MakeCert(const std::string& dir, const std::string& stem,
                  const std::vector<std::string>& names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(stem.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, subject);
  std::string san;
  for (const std::string& name : names) san += (san.empty() ? "DNS:" : ",DNS:") + name;
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(x, key, EVP_sha256());
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
    SSL_set_connect_state(client);
    SSL* srv = server.NewSession();
    BIO *a, *b;
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(client, a, a);
    SSL_set_bio(srv, b, b);
    for (int i = 0; i < 20; ++i) {
      SSL_do_handshake(client);
      SSL_do_handshake(srv);
    }
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

TEST(TicketKeyRingTest, RotatesAndKeepsTwoOldKeysForDecryption) {
  TicketKeyRing ring(absl::Hours(1));
  absl::Time t = absl::FromUnixSeconds(1'000'000);
  TicketKeyRing::Key first = ring.Current(t);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(ring.Current(t + absl::Minutes(59)).name), 16),
            std::string(reinterpret_cast<char*>(first.name), 16));
  TicketKeyRing::Key second = ring.Current(t + absl::Hours(1));
  EXPECT_NE(std::string(reinterpret_cast<char*>(second.name), 16),
            std::string(reinterpret_cast<char*>(first.name), 16));
  TicketKeyRing::Key found;
  bool old = false;
  ASSERT_TRUE(ring.Find(first.name, &found, &old));
  EXPECT_TRUE(old);  // still decrypts; the client gets a fresh ticket
  ASSERT_TRUE(ring.Find(second.name, &found, &old));
  EXPECT_FALSE(old);
  ring.Current(t + absl::Hours(2));
  ring.Current(t + absl::Hours(3));
  EXPECT_FALSE(ring.Find(first.name, &found, &old));  // three periods later: gone
  EXPECT_EQ(ring.rotations(), 4u);
}

}  // namespace
}  // namespace sluice
