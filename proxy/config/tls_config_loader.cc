#include "proxy/config/tls_config_loader.h"

#include <openssl/ssl.h>

#include "absl/strings/str_format.h"
#include "proxy/tls/session_cache.h"

namespace sluice {
namespace {

absl::Status ParseCertificate(const Field& f, const std::string& base_dir,
                              TlsCertificateConfig* out) {
  RETURN_IF_ERROR(f.Child("cert_file").Read(&out->cert_file));
  RETURN_IF_ERROR(f.Child("key_file").Read(&out->key_file));
  RETURN_IF_ERROR(f.Child("ocsp_file").Read(&out->ocsp_file));
  if (out->cert_file.empty()) return f.Child("cert_file").Error("required");
  if (out->key_file.empty()) return f.Child("key_file").Error("required");
  out->cert_file = ResolveConfigPath(out->cert_file, base_dir);
  out->key_file = ResolveConfigPath(out->key_file, base_dir);
  out->ocsp_file = ResolveConfigPath(out->ocsp_file, base_dir);
  return absl::OkStatus();
}

// A listener's `tls` block into `tls`, and the context built from it: what a traffic listener
// and the admin listener share.
absl::Status ParseServerTls(const Field& f, const std::string& base_dir, const std::string& name,
                            bool http2, std::optional<ListenerTlsConfig>* out,
                            std::shared_ptr<const ServerTlsContext>* context_out) {
  RETURN_IF_ERROR(f.ExpectMap({"certificates", "cert_file", "key_file", "ocsp_file", "min_version",
                               "ciphers", "ciphersuites", "session_tickets", "ticket_key_rotation",
                               "ticket_key_files", "client_ca_file"}));
  ListenerTlsConfig& tls = out->emplace();
  Field list = f.Child("certificates");
  const bool single = f.Child("cert_file").present() || f.Child("key_file").present();
  if (list.present() && single) {
    return f.Error("either certificates (a list) or cert_file and key_file, not both");
  }
  if (single) {
    RETURN_IF_ERROR(ParseCertificate(f, base_dir, &tls.certificates.emplace_back()));
  } else if (list.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, list.Sequence());
    for (const Field& item : items) {
      RETURN_IF_ERROR(item.ExpectMap({"cert_file", "key_file", "ocsp_file"}));
      RETURN_IF_ERROR(ParseCertificate(item, base_dir, &tls.certificates.emplace_back()));
    }
  } else if (f.Child("ocsp_file").present()) {
    return f.Child("ocsp_file").Error("goes with cert_file and key_file");
  }
  if (tls.certificates.empty()) {
    return f.Error("needs a certificate: cert_file and key_file, or a certificates list");
  }
  RETURN_IF_ERROR(f.Child("min_version").Read(&tls.min_version));
  if (tls.min_version != "1.2" && tls.min_version != "1.3") {
    return f.Child("min_version").Error("must be \"1.2\" or \"1.3\" (older versions are unsafe)");
  }
  RETURN_IF_ERROR(f.Child("ciphers").Read(&tls.ciphers));
  RETURN_IF_ERROR(f.Child("ciphersuites").Read(&tls.ciphersuites));
  RETURN_IF_ERROR(f.Child("session_tickets").Read(&tls.session_tickets));
  RETURN_IF_ERROR(
      f.Child("ticket_key_rotation").ReadDuration(&tls.ticket_key_rotation, absl::Seconds(1)));
  if (Field files = f.Child("ticket_key_files"); files.present()) {
    if (!tls.session_tickets) return files.Error("goes with session_tickets: true");
    ASSIGN_OR_RETURN(std::vector<Field> items, files.Sequence());
    if (items.empty() || items.size() > 8) return files.Error("must list 1..8 files");
    for (const Field& item : items) {
      ASSIGN_OR_RETURN(std::string path, item.Scalar());
      tls.ticket_key_files.push_back(ResolveConfigPath(path, base_dir));
    }
  }
  RETURN_IF_ERROR(f.Child("client_ca_file").Read(&tls.client_ca_file));
  tls.client_ca_file = ResolveConfigPath(tls.client_ca_file, base_dir);
  absl::StatusOr<std::shared_ptr<const ServerTlsContext>> context =
      ServerTlsContext::Create(tls, name, http2);
  if (!context.ok()) return f.Error(context.status());
  *context_out = *context;
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseListenerTls(const Field& f, const std::string& base_dir,
                              ListenerConfig* listener) {
  return ParseServerTls(f, base_dir, listener->name, listener->http2, &listener->tls,
                        &listener->tls_context);
}

absl::Status ParseAdminTls(const Field& f, const std::string& base_dir, AdminConfig* admin) {
  if (f.Child("client_ca_file").present()) {
    return f.Child("client_ca_file")
        .Error("not taken by the admin listener: its bearer tokens say who asks");
  }
  return ParseServerTls(f, base_dir, kAdminTlsName, /*http2=*/false, &admin->tls,
                        &admin->tls_context);
}

absl::Status ParseUpstreamTls(const Field& f, const std::string& base_dir, UpstreamTlsConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"ca_file", "cert_file", "key_file", "server_name"}));
  RETURN_IF_ERROR(f.Child("ca_file").Read(&out->files.ca_file));
  RETURN_IF_ERROR(f.Child("cert_file").Read(&out->files.cert_file));
  RETURN_IF_ERROR(f.Child("key_file").Read(&out->files.key_file));
  RETURN_IF_ERROR(f.Child("server_name").Read(&out->server_name));
  for (std::string* path : {&out->files.ca_file, &out->files.cert_file, &out->files.key_file}) {
    *path = ResolveConfigPath(*path, base_dir);
  }
  absl::StatusOr<ClientTlsContext> context = MakeClientTlsContext(out->files);
  if (!context.ok()) return f.Error(context.status());
  SSL_CTX* ctx = context->get();
  // Origins speak HTTP/1.1 to us; say so, for servers that insist on ALPN.
  static const unsigned char kAlpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn) - 1);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  TlsSessionSlot::EnableOn(ctx);
  out->context = *context;
  return absl::OkStatus();
}

absl::Status ParseHttp2(const Field& f, Http2Settings* out) {
  RETURN_IF_ERROR(
      f.ExpectMap({"max_concurrent_streams", "initial_stream_window", "initial_connection_window",
                   "max_early_resets", "max_control_frames", "max_continuations"}));
  RETURN_IF_ERROR(
      f.Child("max_concurrent_streams").ReadInt(&out->max_concurrent_streams, 1, 10000));
  // RFC 9113 section 6.9.2: at most 2^31 - 1.
  RETURN_IF_ERROR(
      f.Child("initial_stream_window").ReadSize(&out->initial_stream_window, 65535, 0x7fffffff));
  RETURN_IF_ERROR(f.Child("initial_connection_window")
                      .ReadSize(&out->initial_connection_window, 65535, 0x7fffffff));
  RETURN_IF_ERROR(f.Child("max_early_resets").ReadInt(&out->max_early_resets, 1, 1000000));
  RETURN_IF_ERROR(f.Child("max_control_frames").ReadInt(&out->max_control_frames, 10, 1000000));
  RETURN_IF_ERROR(f.Child("max_continuations").ReadInt(&out->max_continuations, 1, 1000));
  return absl::OkStatus();
}

absl::Status RebuildTlsContexts(Config* config) {
  for (ListenerConfig& listener : config->listeners) {
    if (!listener.tls) continue;
    absl::StatusOr<std::shared_ptr<const ServerTlsContext>> context =
        ServerTlsContext::Create(*listener.tls, listener.name, listener.http2);
    if (!context.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("listener \"%s\": %s", listener.name,
                                                        std::string(context.status().message())));
    }
    listener.tls_context = *context;
  }
  if (config->admin.tls) {
    absl::StatusOr<std::shared_ptr<const ServerTlsContext>> context =
        ServerTlsContext::Create(*config->admin.tls, kAdminTlsName, /*http2=*/false);
    if (!context.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("admin listener: %s", std::string(context.status().message())));
    }
    config->admin.tls_context = *context;
  }
  return absl::OkStatus();
}

void ApplyTicketKeys(const Config& config) {
  for (const ListenerConfig& listener : config.listeners) {
    if (listener.tls_context) listener.tls_context->ApplyTicketKeys();
  }
  if (config.admin.tls_context) config.admin.tls_context->ApplyTicketKeys();
}

std::vector<std::string> TlsFiles(const Config& config) {
  std::vector<std::string> files;
  for (const ListenerConfig& listener : config.listeners) {
    if (!listener.tls) continue;
    for (std::string& file : ServerTlsContext::Files(*listener.tls)) {
      if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
    }
  }
  if (config.admin.tls) {
    for (std::string& file : ServerTlsContext::Files(*config.admin.tls)) {
      if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
    }
  }
  return files;
}

}  // namespace sluice
