#include "proxy/tls/client_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_format.h"
#include "common/secret_file.h"

namespace sluice {
namespace {

bool IsIpAddress(const std::string& name) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

}  // namespace

absl::StatusOr<ClientTlsContext> MakeClientTlsContext(const ClientTlsFiles& files) {
  ERR_clear_error();
  ClientTlsContext context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!context) return absl::InternalError("TLS: " + OpenSslErrors());
  SSL_CTX* ctx = context.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (files.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return absl::InvalidArgumentError("TLS: cannot load the system's CA bundle: " +
                                        OpenSslErrors());
    }
  } else if (SSL_CTX_load_verify_locations(ctx, files.ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ca_file %s: %s", files.ca_file, OpenSslErrors()));
  }
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError("cert_file and key_file go together");
  }
  if (!files.cert_file.empty()) {
    if (absl::Status s = UseCertificate(ctx, files.cert_file, files.key_file); !s.ok()) return s;
  }
  return context;
}

absl::Status UseCertificate(SSL_CTX* ctx, const std::string& cert_file,
                            const std::string& key_file) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cert_file %s: %s", cert_file, OpenSslErrors()));
  }
  WarnIfOthersMayRead(key_file);
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("key_file %s: %s", key_file, OpenSslErrors()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrFormat("key_file %s does not belong to cert_file %s", key_file, cert_file));
  }
  return absl::OkStatus();
}

std::string OpenSslErrors() {
  std::string text;
  for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? std::string("unknown error") : text;
}

SSL* NewClientSsl(SSL_CTX* context, const std::string& server_name) {
  SSL* ssl = SSL_new(context);
  if (!ssl) return nullptr;
  SSL_set_connect_state(ssl);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (IsIpAddress(server_name)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, server_name.c_str());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0);
  }
  return ssl;
}

ClientTlsSession::ClientTlsSession(ClientTlsContext context, const std::string& server_name,
                                   TlsSessionSlot* resume)
    : context_(std::move(context)) {
  ssl_ = NewClientSsl(context_.get(), server_name);
  if (ssl_ && resume) resume->Attach(ssl_);
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  if (!ssl_ || !network_in_ || !network_out_) {
    error_ = "TLS: out of memory";
    BIO_free(network_in_);
    BIO_free(network_out_);
    network_in_ = network_out_ = nullptr;
    return;
  }
  BIO_set_mem_eof_return(network_in_, -1);  // an empty input means "more later", not EOF
  SSL_set_bio(ssl_, network_in_, network_out_);
}

ClientTlsSession::~ClientTlsSession() {
  if (!ssl_) return;
  // Freed without a shutdown, OpenSSL takes the connection for a failed one and marks its
  // session not resumable: a TLS 1.3 ticket kept in a TlsSessionSlot would then be useless
  // after every closed connection. A connection that got past its handshake ends quietly.
  if (established_) {
    SSL_set_quiet_shutdown(ssl_, 1);
    SSL_shutdown(ssl_);
  }
  SSL_free(ssl_);  // frees both BIOs
}

bool ClientTlsSession::Fail(int ret, const char* what) {
  int code = SSL_get_error(ssl_, ret);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return true;
  long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    error_ = absl::StrFormat("TLS %s: the server's certificate: %s", what,
                             X509_verify_cert_error_string(verify));
  } else if (code == SSL_ERROR_ZERO_RETURN) {
    error_ = absl::StrFormat("TLS %s: the server closed the session", what);
  } else {
    error_ = absl::StrFormat("TLS %s: %s", what, OpenSslErrors());
  }
  return false;
}

bool ClientTlsSession::Start() {
  if (!error_.empty()) return false;
  return Advance(nullptr);
}

bool ClientTlsSession::Write(std::string_view plaintext) {
  if (!error_.empty()) return false;
  pending_.append(plaintext);
  return Advance(nullptr);
}

bool ClientTlsSession::Read(std::string_view ciphertext, std::string* plaintext) {
  if (!error_.empty()) return false;
  if (!ciphertext.empty() &&
      BIO_write(network_in_, ciphertext.data(), static_cast<int>(ciphertext.size())) !=
          static_cast<int>(ciphertext.size())) {
    error_ = "TLS: out of memory";
    return false;
  }
  return Advance(plaintext);
}

bool ClientTlsSession::Advance(std::string* plaintext) {
  ERR_clear_error();
  if (!established_) {
    int ret = SSL_do_handshake(ssl_);
    if (ret != 1) return Fail(ret, "handshake");
    established_ = true;
  }
  while (!pending_.empty()) {
    size_t written = 0;
    int ret = SSL_write_ex(ssl_, pending_.data(), pending_.size(), &written);
    if (ret != 1) return Fail(ret, "write");
    pending_.erase(0, written);
  }
  if (plaintext) {
    char buffer[16384];
    for (;;) {
      size_t n = 0;
      int ret = SSL_read_ex(ssl_, buffer, sizeof(buffer), &n);
      if (ret != 1) {
        int code = SSL_get_error(ssl_, ret);
        if (code == SSL_ERROR_ZERO_RETURN) break;  // close_notify: the stream's EOF follows
        return Fail(ret, "read");
      }
      plaintext->append(buffer, n);
    }
  }
  return true;
}

std::string ClientTlsSession::TakeOutput() {
  std::string out;
  char* data = nullptr;
  long n = BIO_get_mem_data(network_out_, &data);
  if (n > 0) {
    out.assign(data, static_cast<size_t>(n));
    (void)BIO_reset(network_out_);
  }
  return out;
}

}  // namespace sluice
