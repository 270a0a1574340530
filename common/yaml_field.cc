#include "common/yaml_field.h"

#include "common/secret_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sluice {

absl::StatusOr<Field::Secret> Field::ReadSecretFile(const std::string& base_dir) const {
  absl::StatusOr<std::string> name = Scalar();
  if (!name.ok()) return name.status();
  const std::string path = ResolveConfigPath(*name, base_dir);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(absl::StrFormat("cannot read %s: %s", path, std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  std::string raw = text.str();
  WarnIfOthersMayRead(path);
  return Secret{path, std::string(StripWhitespace(raw))};
}

absl::Status Field::ReadSha256Hex(std::string_view noun, Sha256Digest* out) const {
  ASSIGN_OR_RETURN(std::string hex, Scalar());
  if (hex.size() != 64) {
    std::string upper(noun);
    for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    return Error(
        absl::StrFormat("must be the 64 hex digits of the %s's SHA-256 (printf %%s %s | "
                        "sha256sum)",
                        noun, upper));
  }
  for (size_t i = 0; i < out->size(); ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Error("not hexadecimal");
    (*out)[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return absl::OkStatus();
}

}  // namespace sluice
