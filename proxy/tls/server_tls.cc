#include "proxy/tls/server_tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "common/secret_file.h"
#include "common/status_macros.h"
#include "proxy/tls/client_tls.h"

namespace sluice {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrFormat("%s: %s", path, strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The DNS names (and IP addresses, as text) a certificate answers for: its subjectAltName
// entries, or its common name when it has none.
std::vector<std::string> CertificateNames(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type != GEN_DNS) continue;
      const ASN1_STRING* value = name->d.dNSName;
      names.push_back(absl::AsciiStrToLower(
          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                      static_cast<size_t>(ASN1_STRING_length(value)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) >
        0) {
      names.push_back(absl::AsciiStrToLower(cn));
    }
  }
  return names;
}

}  // namespace

// --- Ticket keys ---------------------------------------------------------------------------

std::shared_ptr<TicketKeyRing> TicketKeyRing::ForListener(const std::string& name,
                                                          absl::Duration rotation) {
  static std::mutex mutex;
  static auto* rings = new std::map<std::string, std::shared_ptr<TicketKeyRing>>();
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<TicketKeyRing>& ring = (*rings)[name];
  if (!ring) {
    ring = std::make_shared<TicketKeyRing>(rotation);
  } else {
    ring->SetRotation(rotation);
  }
  return ring;
}

void TicketKeyRing::SetRotation(absl::Duration rotation) {
  std::lock_guard<std::mutex> lock(mutex_);
  rotation_ = rotation;
}

uint64_t TicketKeyRing::rotations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rotations_;
}

TicketKeyRing::Source TicketKeyRing::source() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return source_;
}

void TicketKeyRing::RotateLocked(absl::Time now) {
  absl::StatusOr<TicketKey> key = RandomTicketKey(now);
  if (!key.ok()) return;  // keep the current key: a ticket under an old key beats no ticket
  keys_.insert(keys_.begin(), Entry{*key});
  if (keys_.size() > 3) keys_.resize(3);
  ++rotations_;
}

const TicketKeyRing::Entry* TicketKeyRing::CurrentLocked(absl::Time now) {
  if (source_ == Source::kOwn) {
    if (keys_.empty() || now - keys_.front().key.not_before >= rotation_) RotateLocked(now);
    return keys_.empty() ? nullptr : &keys_.front();
  }
  // The newest installed key whose time has come; before any has (a clock behind the
  // leader's), a kept key that still decrypts, else the oldest installed one.
  const Entry* oldest = nullptr;
  for (const Entry& entry : keys_) {
    if (entry.installed) {
      if (entry.key.not_before <= now) return &entry;
      oldest = &entry;
    }
  }
  for (const Entry& entry : keys_) {
    if (!entry.installed && now < entry.until) return &entry;
  }
  return oldest;
}

TicketKey TicketKeyRing::Current(absl::Time now) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Entry* entry = CurrentLocked(now);
  return entry ? entry->key : TicketKey{};  // all zeros only when the generator never worked
}

bool TicketKeyRing::Find(const unsigned char name[16], absl::Time now, TicketKey* key,
                         bool* renew) {
  std::lock_guard<std::mutex> lock(mutex_);
  // First: it may rotate (and move the entries).
  const Entry* current = CurrentLocked(now);
  for (const Entry& entry : keys_) {
    if (now < entry.until && std::memcmp(entry.key.name.data(), name, 16) == 0) {
      *key = entry.key;
      *renew = !current || current->key.name != entry.key.name;
      return true;
    }
  }
  return false;
}

std::vector<TicketKeyRing::Entry> TicketKeyRing::KeptLocked(absl::Time now, absl::Duration keep) {
  std::vector<Entry> kept;
  if (const Entry* current = CurrentLocked(now)) {
    Entry entry = *current;
    entry.installed = false;
    entry.until = std::min(entry.until, now + keep);
    kept.push_back(entry);
  }
  for (const Entry& entry : keys_) {
    if (!entry.installed && entry.until != absl::InfiniteFuture() && now < entry.until &&
        (kept.empty() || entry.key.name != kept.front().key.name)) {
      kept.push_back(entry);
    }
  }
  return kept;
}

void TicketKeyRing::Install(std::vector<TicketKey> keys, Source source, absl::Time now,
                            absl::Duration keep) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Entry> next;
  for (const TicketKey& key : keys) next.push_back(Entry{key, /*installed=*/true});
  for (Entry& entry : KeptLocked(now, keep)) {
    bool listed = false;
    for (const TicketKey& key : keys) listed = listed || key.name == entry.key.name;
    if (!listed && next.size() < 16) next.push_back(entry);
  }
  keys_ = std::move(next);
  source_ = source;
}

void TicketKeyRing::MakeOwn(absl::Time now, absl::Duration keep) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (source_ == Source::kOwn) return;
  std::vector<Entry> kept = KeptLocked(now, keep);
  source_ = Source::kOwn;
  keys_.clear();
  RotateLocked(now);
  for (Entry& entry : kept) keys_.push_back(entry);
}

// --- The context -----------------------------------------------------------------------------

struct ServerTlsContext::SniTable {
  absl::flat_hash_map<std::string, SSL_CTX*> exact;     // "www.example.com"
  absl::flat_hash_map<std::string, SSL_CTX*> wildcard;  // "example.com" for *.example.com
  std::vector<SSL_CTX*> others;                         // a reference to each non-default context
  ~SniTable() {
    for (SSL_CTX* ctx : others) SSL_CTX_free(ctx);
  }
  SSL_CTX* Pick(std::string_view server_name) const {
    std::string name = absl::AsciiStrToLower(std::string(server_name));
    if (auto it = exact.find(name); it != exact.end()) return it->second;
    size_t dot = name.find('.');
    if (dot != std::string::npos) {
      if (auto it = wildcard.find(name.substr(dot + 1)); it != wildcard.end()) return it->second;
    }
    return nullptr;
  }
};

struct ServerTlsContext::Certificate {
  std::string ocsp;  // DER response, stapled when a client asks
  std::shared_ptr<TicketKeyRing> tickets;
  bool http2 = true;
  // The default certificate's: where SNI finds the others. Holding it here (and the other
  // contexts in it) keeps every certificate alive while a session of the listener is.
  std::unique_ptr<SniTable> sni;
};

namespace {

ServerTlsContext::Certificate* CertificateOf(SSL* ssl);

// Fetched once: OpenSSL 3 looks a cipher or digest up by name (under a lock) each time a
// legacy EVP_aes_256_cbc() or a digest name is used, on every ticket.
const EVP_CIPHER* TicketCipher() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

// RFC 5077 tickets under the ring's keys (AES-256-CBC, HMAC-SHA256).
int OnTicketKey(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                EVP_MAC_CTX* mac, int encrypt) {
  ServerTlsContext::Certificate* cert = CertificateOf(ssl);
  if (!cert || !cert->tickets || !TicketCipher()) return 0;
  TicketKey key;
  int result = 1;
  absl::Time now = absl::Now();
  if (encrypt) {
    key = cert->tickets->Current(now);
    std::memcpy(key_name, key.name.data(), 16);
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, TicketCipher(), nullptr, key.aes.data(), iv) != 1) return -1;
  } else {
    bool renew = false;
    if (!cert->tickets->Find(key_name, now, &key, &renew)) return 0;  // unknown: full handshake
    if (EVP_DecryptInit_ex(cipher, TicketCipher(), nullptr, key.aes.data(), iv) != 1) return -1;
    // 2: accepted, and a new ticket goes out: under the current key when this one is older,
    // and always in TLS 1.3, whose tickets are for one use (RFC 8446, C.4): a client that
    // resumed holds a ticket for its next connection too.
    result = renew || SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  int set = EVP_MAC_CTX_set_params(mac, params);
  OPENSSL_cleanse(&key, sizeof(key));
  return set == 1 ? result : -1;
}

int OnAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
           unsigned int in_len, void*) {
  ServerTlsContext::Certificate* cert = CertificateOf(ssl);
  bool http2 = cert && cert->http2;
  const unsigned char* http11 = nullptr;
  for (unsigned int i = 0; i < in_len;) {
    unsigned int len = in[i];
    if (i + 1 + len > in_len) break;
    std::string_view proto(reinterpret_cast<const char*>(in + i + 1), len);
    if (http2 && proto == "h2") {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    if (proto == "http/1.1" && !http11) http11 = in + i + 1;
    i += 1 + len;
  }
  if (!http11) return SSL_TLSEXT_ERR_NOACK;  // nothing we speak: HTTP/1.1 without ALPN
  *out = http11;
  *out_len = 8;
  return SSL_TLSEXT_ERR_OK;
}

int OnStatusRequest(SSL* ssl, void*) {
  ServerTlsContext::Certificate* cert = CertificateOf(ssl);
  if (!cert || cert->ocsp.empty()) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(cert->ocsp.data(), cert->ocsp.size()));
  if (!copy) return SSL_TLSEXT_ERR_NOACK;
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(cert->ocsp.size()));
  return SSL_TLSEXT_ERR_OK;
}

int CertificateIndex() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* data, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<ServerTlsContext::Certificate*>(data);
      });
  return index;
}

ServerTlsContext::Certificate* CertificateOf(SSL_CTX* ctx) {
  return static_cast<ServerTlsContext::Certificate*>(SSL_CTX_get_ex_data(ctx, CertificateIndex()));
}

ServerTlsContext::Certificate* CertificateOf(SSL* ssl) {
  return CertificateOf(SSL_get_SSL_CTX(ssl));
}

// Checks that a DER OCSP response parses and says "successful".
absl::Status CheckOcspResponse(const std::string& der, const std::string& path) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  OCSP_RESPONSE* response = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size()));
  if (!response) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrFormat("ocsp_file %s: not a DER OCSP response", path));
  }
  int status = OCSP_response_status(response);
  OCSP_RESPONSE_free(response);
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return absl::InvalidArgumentError(absl::StrFormat("ocsp_file %s: the response status is %s",
                                                      path, OCSP_response_status_str(status)));
  }
  return absl::OkStatus();
}

}  // namespace

ServerTlsContext::~ServerTlsContext() {
  for (SSL_CTX* ctx : contexts_) SSL_CTX_free(ctx);
}

std::vector<std::string> ServerTlsContext::Files(const ListenerTlsConfig& config) {
  std::vector<std::string> files;
  for (const TlsCertificateConfig& cert : config.certificates) {
    files.push_back(cert.cert_file);
    files.push_back(cert.key_file);
    if (!cert.ocsp_file.empty()) files.push_back(cert.ocsp_file);
  }
  if (!config.client_ca_file.empty()) files.push_back(config.client_ca_file);
  for (const std::string& path : config.ticket_key_files) files.push_back(path);
  return files;
}

absl::StatusOr<std::shared_ptr<const ServerTlsContext>> ServerTlsContext::Create(
    const ListenerTlsConfig& config, const std::string& listener, bool http2) {
  if (config.certificates.empty()) {
    return absl::InvalidArgumentError("needs at least one certificate");
  }
  std::shared_ptr<ServerTlsContext> context(new ServerTlsContext());
  std::vector<TicketKey> file_keys;
  for (const std::string& path : config.ticket_key_files) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    WarnIfOthersMayRead(path);
    ASSIGN_OR_RETURN(TicketKey key, ParseTicketKeyFile(bytes, path));
    OPENSSL_cleanse(bytes.data(), bytes.size());
    for (const TicketKey& other : file_keys) {
      if (other.name == key.name) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: the same key name as an earlier ticket key file", path));
      }
    }
    file_keys.push_back(key);
  }
  std::shared_ptr<TicketKeyRing> tickets;
  if (config.session_tickets) {
    tickets = TicketKeyRing::ForListener(listener, config.ticket_key_rotation);
  }
  auto sni = std::make_unique<SniTable>();
  ERR_clear_error();
  for (size_t i = 0; i < config.certificates.size(); ++i) {
    const TlsCertificateConfig& files = config.certificates[i];
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return absl::InternalError("TLS: " + OpenSslErrors());
    context->contexts_.push_back(ctx);  // freed with the context, whatever happens below
    auto* cert = new Certificate();
    SSL_CTX_set_ex_data(ctx, CertificateIndex(), cert);  // owned by ctx from here on
    cert->http2 = http2;
    cert->tickets = tickets;
    SSL_CTX_set_min_proto_version(ctx,
                                  config.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    // No compression (CRIME), no renegotiation (a client could make us do handshakes at
    // will), buffers released while a connection is idle (memory per idle connection).
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, config.ciphers.c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ciphers \"%s\": %s", config.ciphers, OpenSslErrors()));
    }
    const std::string& suites =
        config.ciphersuites.empty() ? std::string(kDefaultTls13Suites) : config.ciphersuites;
    if (SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ciphersuites \"%s\": %s", suites, OpenSslErrors()));
    }
    RETURN_IF_ERROR(UseCertificate(ctx, files.cert_file, files.key_file));
    std::vector<std::string> names = CertificateNames(SSL_CTX_get0_certificate(ctx));
    if (!files.ocsp_file.empty()) {
      ASSIGN_OR_RETURN(cert->ocsp, ReadFile(files.ocsp_file));
      RETURN_IF_ERROR(CheckOcspResponse(cert->ocsp, files.ocsp_file));
      SSL_CTX_set_tlsext_status_cb(ctx, OnStatusRequest);
    }
    // Tickets only: a per-process session cache would not be shared by the workers' peers.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char kSessionContext[] = "sluice";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
    if (config.session_tickets) {
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, OnTicketKey);
      SSL_CTX_set_num_tickets(ctx, 1);
      SSL_CTX_set_timeout(ctx,
                          static_cast<long>(absl::ToInt64Seconds(config.ticket_key_rotation) * 2));
    } else {
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_alpn_select_cb(ctx, OnAlpn, nullptr);
    if (!config.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, config.client_ca_file.c_str(), nullptr) != 1) {
        return absl::InvalidArgumentError(
            absl::StrFormat("client_ca_file %s: %s", config.client_ca_file, OpenSslErrors()));
      }
      STACK_OF(X509_NAME)* ca_names = SSL_load_client_CA_file(config.client_ca_file.c_str());
      if (ca_names) SSL_CTX_set_client_CA_list(ctx, ca_names);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    for (const std::string& name : names) {
      if (name.starts_with("*.")) {
        sni->wildcard.try_emplace(name.substr(2), ctx);
      } else {
        sni->exact.try_emplace(name, ctx);
      }
    }
    if (i > 0) {
      SSL_CTX_up_ref(ctx);
      sni->others.push_back(ctx);
    }
    context->names_.push_back(std::move(names));
  }
  // The ring changes when the configuration is committed (ApplyTicketKeys), not here: a reload
  // refused after this context was built leaves the ring as it was.
  context->tickets_ = tickets;
  context->file_keys_ = std::move(file_keys);
  context->keep_ = config.ticket_key_rotation;
  SSL_CTX* primary = context->contexts_[0];
  if (config.certificates.size() > 1) {
    SSL_CTX_set_tlsext_servername_callback(primary, OnServerName);
    CertificateOf(primary)->sni = std::move(sni);
  }
  return std::shared_ptr<const ServerTlsContext>(std::move(context));
}

int ServerTlsContext::OnServerName(SSL* ssl, int*, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  Certificate* primary = CertificateOf(ssl);
  if (!name || !primary || !primary->sni) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* ctx = primary->sni->Pick(name);
  if (ctx && ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

void ServerTlsContext::ApplyTicketKeys() const {
  if (!tickets_) return;
  if (!file_keys_.empty()) {
    tickets_->Install(file_keys_, TicketKeyRing::Source::kFiles, absl::Now(), keep_);
  } else if (tickets_->source() == TicketKeyRing::Source::kFiles) {
    tickets_->MakeOwn(absl::Now(), keep_);
  }
}

SSL* ServerTlsContext::NewSession() const {
  SSL* ssl = SSL_new(contexts_[0]);
  if (ssl) SSL_set_accept_state(ssl);
  return ssl;
}

std::vector<std::vector<std::string>> ServerTlsContext::names() const { return names_; }

}  // namespace sluice
