// Certificates for tests of TLS code: made in memory, signed by their own key.
#ifndef SLUICE_TESTS_PROXY_TLS_TEST_UTIL_H_
#define SLUICE_TESTS_PROXY_TLS_TEST_UTIL_H_

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

namespace sluice {

// A certificate for `key`, self-signed, valid from now for `valid_seconds`, with common name `cn`
// and `names` as DNS subject alternative names (none if empty). The caller frees it.
inline X509* SelfSignedCert(EVP_PKEY* key, const std::string& cn,
                            const std::vector<std::string>& names, long valid_seconds = 3600) {
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), valid_seconds);
  X509_set_pubkey(x, key);
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, subject);
  if (!names.empty()) {
    std::string san;
    for (const std::string& name : names) san += (san.empty() ? "DNS:" : ",DNS:") + name;
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  return x;
}

}  // namespace sluice

#endif  // SLUICE_TESTS_PROXY_TLS_TEST_UTIL_H_
