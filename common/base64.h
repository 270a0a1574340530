// Base64 (RFC 4648): the standard alphabet with padding (etcd's JSON gateway) and base64url
// without padding (JWT, RFC 7515 section 2). Decoders accept only canonical encodings.
#ifndef SLUICE_COMMON_BASE64_H_
#define SLUICE_COMMON_BASE64_H_

#include <string>
#include <string_view>

namespace sluice {

std::string Base64Encode(std::string_view in);
// Standard alphabet, padded to a multiple of four; false on anything else.
bool Base64Decode(std::string_view in, std::string* out);
// Base64url without padding; false on any other character.
bool DecodeBase64Url(std::string_view in, std::string* out);

}  // namespace sluice

#endif  // SLUICE_COMMON_BASE64_H_
