// An ordered list of HTTP header fields whose bytes live in one buffer owned by the map.
//
// Used for request and response heads on one worker thread; not thread-safe. Names keep the
// case they arrived with (HTTP/1.1 forwarding preserves them); lookups ignore case. Each field
// is classified once when it is added, so proxy logic tests a small enum instead of comparing
// strings on the hot path.
#ifndef SLUICE_COMMON_HTTP_HEADERS_H_
#define SLUICE_COMMON_HTTP_HEADERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Header names that the proxy treats specially. kConnectionListed marks a field whose name
// appeared in the message's Connection header, which makes it hop-by-hop.
enum class HeaderKind : uint8_t {
  kOther,
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kKeepAlive,
  kProxyConnection,
  kProxyOther,  // any other Proxy-* field: hop-by-hop for sluice
  kTe,
  kTrailer,
  kUpgrade,
  kExpect,
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kXForwardedPort,
  kForwarded,  // RFC 7239
  kXRealIp,
  kAuthorization,
  kVia,
  kSluiceInternal,  // sluice-*: internal between regions, never trusted from a client
  kConnectionListed,
};

HeaderKind ClassifyHeaderName(std::string_view name);

// An RFC 9110 token (a field name, a method): one or more of ALPHA DIGIT !#$%&'*+-.^_`|~.
bool IsHttpToken(std::string_view text);

// True for fields that a proxy never forwards as they are (RFC 9110 section 7.6.1 plus
// Proxy-* and fields named by Connection). Upgrade is included: the forwarder re-adds it when
// it proxies an upgrade.
bool IsHopByHop(HeaderKind kind);

// False for fields that never belong in a trailer section: framing, routing and hop-by-hop
// fields (RFC 9110 section 6.5.1).
inline bool AllowedInTrailers(HeaderKind kind) {
  return kind != HeaderKind::kContentLength && kind != HeaderKind::kTransferEncoding &&
         kind != HeaderKind::kHost && !IsHopByHop(kind);
}

class HeaderMap {
 public:
  struct Field {
    uint32_t name_offset;
    uint32_t name_size;
    uint32_t value_offset;
    uint32_t value_size;
    HeaderKind kind;
  };

  HeaderMap() = default;

  void Add(std::string_view name, std::string_view value);
  // The same for a name and value that lie in one line of the same buffer, the value after the
  // name (a parsed field line): the line is copied once, with what lies between them.
  void AddFromLine(std::string_view name, std::string_view value, HeaderKind kind);
  // Replaces every field with this name by one field (appended at the end).
  void Set(std::string_view name, std::string_view value);
  // Removes every field with this name (case-insensitive) or kind. Returns how many went.
  int Remove(std::string_view name);
  int RemoveKind(HeaderKind kind);
  // Removes every field for which pred(size_t index) is true, in one pass.
  template <typename Pred>
  void RemoveIf(Pred pred) {
    size_t kept = 0;
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (!pred(i)) fields_[kept++] = fields_[i];
    }
    fields_.resize(kept);
  }

  // Incremental building for codecs that receive names and values in pieces. A field is
  // begun, its name and value bytes are appended in order, and Finish trims the value's
  // trailing whitespace and classifies the name.
  void BeginField();
  void AppendName(std::string_view piece);
  void AppendValue(std::string_view piece);
  void FinishField();
  // The same for a field whose kind the caller knows (a name it wrote itself).
  void FinishField(HeaderKind kind);

  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  std::string_view name(size_t i) const {
    return {storage_.data() + fields_[i].name_offset, fields_[i].name_size};
  }
  std::string_view value(size_t i) const {
    return {storage_.data() + fields_[i].value_offset, fields_[i].value_size};
  }
  HeaderKind kind(size_t i) const { return fields_[i].kind; }
  void set_kind(size_t i, HeaderKind kind) { fields_[i].kind = kind; }

  // First value of a field with this name or kind.
  std::optional<std::string_view> Get(std::string_view name) const;
  std::optional<std::string_view> GetKind(HeaderKind kind) const;
  int CountKind(HeaderKind kind) const;
  int Count(std::string_view name) const;  // fields named `name`, in any case

  // Bytes the fields would take as "name: value\r\n" lines.
  size_t SerializedSize() const;
  // At least SerializedSize(), without a pass over the fields: every name and value is stored
  // once in the map's own buffer (for a reserve).
  size_t SerializedSizeBound() const { return storage_.size() + 4 * fields_.size(); }

  // Drops all fields. Keeps capacity unless it grew unusually large.
  void Clear();

 private:
  std::string storage_;
  std::vector<Field> fields_;
};

// Splits a comma-separated header value into trimmed, non-empty elements and calls
// `fn(std::string_view element)` for each (RFC 9110 section 5.6.1 list syntax).
template <typename Fn>
void ForEachListElement(std::string_view value, Fn fn) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view element = value.substr(start, comma - start);
    while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
      element.remove_prefix(1);
    }
    while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) {
      element.remove_suffix(1);
    }
    if (!element.empty()) fn(element);
    start = comma + 1;
  }
}

}  // namespace sluice

#endif  // SLUICE_COMMON_HTTP_HEADERS_H_
