// A YAML node together with the key path that leads to it, so that every configuration error
// can say "file:line: key.path: message". Used by the configuration loaders on the control
// thread.
#ifndef SLUICE_COMMON_YAML_FIELD_H_
#define SLUICE_COMMON_YAML_FIELD_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/sha256.h"
#include "common/socket_address.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/units.h"
#include "yaml-cpp/yaml.h"

namespace sluice {

// A relative path in the configuration is relative to the configuration file's directory.
inline std::string ResolveConfigPath(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/') return path;
  return base_dir + "/" + path;
}

// A YAML node with the key path that leads to it, so every error can say where it is.
class Field {
 public:
  // Not assignable: assigning a YAML::Node writes into the document instead of rebinding.
  Field(const Field&) = default;
  Field(Field&&) = default;
  Field& operator=(const Field&) = delete;
  Field& operator=(Field&&) = delete;

  Field(YAML::Node node, std::string path, const std::string* source, int line)
      : node_(std::move(node)), path_(std::move(path)), source_(source), line_(line) {
    if (node_.IsDefined() && node_.Mark().line >= 0) line_ = node_.Mark().line + 1;
  }

  // Re-anchors an error from a value parser (which knows nothing of files) at this key.
  absl::Status Error(const absl::Status& status) const {
    return Error(std::string_view(status.message().data(), status.message().size()));
  }
  absl::Status Error(std::string_view message) const {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s:%d: %s: %s", *source_, line_, path_.empty() ? "(top level)" : path_, message));
  }

  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  bool IsScalar() const { return node_.IsScalar(); }
  const std::string& path() const { return path_; }
  int line() const { return line_; }

  Field Child(std::string_view key) const {
    std::string path = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    return Field(node_.IsMap() ? node_[std::string(key)] : YAML::Node(YAML::NodeType::Undefined),
                 std::move(path), source_, line_);
  }

  absl::Status ExpectMap(std::initializer_list<std::string_view> allowed) const {
    if (!node_.IsMap()) return Error("expected a mapping of keys to values");
    std::string names;
    for (std::string_view a : allowed) {
      if (!names.empty()) names += ", ";
      names += a;
    }
    for (const auto& entry : node_) {
      std::string key = entry.first.as<std::string>("");
      bool known = false;
      for (std::string_view a : allowed) known = known || key == a;
      if (!known) {
        int line = entry.first.Mark().line + 1;
        return absl::InvalidArgumentError(
            absl::StrFormat("%s:%d: %s: unknown key \"%s\" (expected one of: %s)", *source_, line,
                            path_.empty() ? "(top level)" : path_, key, names));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Field>> Sequence() const {
    if (!node_.IsSequence()) return Error("expected a list");
    std::vector<Field> items;
    for (size_t i = 0; i < node_.size(); ++i) {
      items.emplace_back(node_[i], absl::StrFormat("%s[%d]", path_, i), source_, line_);
    }
    return items;
  }

  // The key/value pairs of a mapping, in file order.
  absl::StatusOr<std::vector<std::pair<std::string, Field>>> Entries() const {
    if (!node_.IsMap()) return Error("expected a mapping of keys to values");
    std::vector<std::pair<std::string, Field>> entries;
    for (const auto& entry : node_) {
      std::string key = entry.first.as<std::string>("");
      std::string path = path_.empty() ? key : path_ + "." + key;
      entries.emplace_back(key, Field(entry.second, std::move(path), source_, line_));
    }
    return entries;
  }

  absl::StatusOr<std::string> Scalar() const {
    if (!node_.IsScalar()) return Error("expected a single value");
    return node_.Scalar();
  }

  absl::Status Read(std::string* out) const {
    if (!present()) return absl::OkStatus();
    ASSIGN_OR_RETURN(*out, Scalar());
    return absl::OkStatus();
  }

  absl::Status Read(bool* out) const {
    if (!present()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string text, Scalar());
    if (text == "true" || text == "yes" || text == "on") {
      *out = true;
    } else if (text == "false" || text == "no" || text == "off") {
      *out = false;
    } else {
      return Error(absl::StrFormat("expected true or false, got \"%s\"", text));
    }
    return absl::OkStatus();
  }

  absl::Status ReadDouble(double* out, double min, double max) const {
    if (!present()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string text, Scalar());
    double value = 0;
    if (!ParseDouble(text, &value) || value < min || value > max) {
      return Error(absl::StrFormat("must be a number from %g to %g, got \"%s\"", min, max, text));
    }
    *out = value;
    return absl::OkStatus();
  }

  template <typename Int>
  absl::Status ReadInt(Int* out, int64_t min, int64_t max) const {
    if (!present()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string text, Scalar());
    int64_t value = 0;
    if (!ParseInteger(text, &value)) {
      return Error(absl::StrFormat("expected an integer, got \"%s\"", text));
    }
    if (value < min || value > max) {
      return Error(absl::StrFormat("must be %d..%d, got %d", min, max, value));
    }
    *out = static_cast<Int>(value);
    return absl::OkStatus();
  }

  template <typename Int>
  absl::Status ReadSize(Int* out, uint64_t min, uint64_t max) const {
    if (!present()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string text, Scalar());
    absl::StatusOr<uint64_t> size = ParseByteSize(text);
    if (!size.ok()) return Error(size.status());
    if (*size < min || *size > max) {
      return Error(absl::StrFormat("must be between %d and %d bytes, got %d", min, max, *size));
    }
    *out = static_cast<Int>(*size);
    return absl::OkStatus();
  }

  absl::Status ReadDuration(absl::Duration* out, absl::Duration min) const {
    if (!present()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string text, Scalar());
    absl::StatusOr<absl::Duration> d = ParseDurationText(text);
    if (!d.ok()) return Error(d.status());
    if (*d < min) {
      return Error(absl::StrFormat("must be at least %s, got %s", absl::FormatDuration(min), text));
    }
    *out = *d;
    return absl::OkStatus();
  }

  // A secret kept in the file this field names (relative to `base_dir`): the file's contents
  // without surrounding whitespace. The error names the file; checking its length is the
  // caller's.
  struct Secret {
    std::string path;
    std::string value;
  };
  absl::StatusOr<Secret> ReadSecretFile(const std::string& base_dir) const;

  // The 64 hex digits of a SHA-256 digest; `noun` ("key", "token") names whose, in the error.
  absl::Status ReadSha256Hex(std::string_view noun, Sha256Digest* out) const;

  absl::Status ReadAddress(SocketAddress* out) const {
    ASSIGN_OR_RETURN(std::string text, Scalar());
    absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(text);
    if (!addr.ok()) return Error(addr.status());
    *out = *addr;
    return absl::OkStatus();
  }

 private:
  YAML::Node node_;
  std::string path_;
  const std::string* source_;
  int line_;
};

}  // namespace sluice

#endif  // SLUICE_COMMON_YAML_FIELD_H_
