#include "proxy/config/cohort_cidr_map.h"

#include <arpa/inet.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

using Uint128 = CohortCidrMap::Uint128;

// One line's range, its cohort and where it was written.
template <typename Key>
struct CidrLine {
  Key first = 0;
  Key last = 0;
  int length = 0;
  int32_t cohort = -1;
  size_t line = 0;
};

template <typename Key>
Key FromBytes(const uint8_t* bytes) {
  Key key = 0;
  for (size_t i = 0; i < sizeof(Key); ++i) key = static_cast<Key>(key << 8) | bytes[i];
  return key;
}

template <typename Key>
void ToBytes(Key key, uint8_t* bytes) {
  for (size_t i = sizeof(Key); i-- > 0;) {
    bytes[i] = static_cast<uint8_t>(key & 0xff);
    key = static_cast<Key>(key >> 8);
  }
}

// The addresses of a /length beyond its prefix.
template <typename Key>
Key HostMask(int length) {
  constexpr int kBits = static_cast<int>(sizeof(Key) * 8);
  return length >= kBits ? Key{0} : static_cast<Key>(~Key{0} >> length);
}

// Sorted lines (by first address, then shorter prefix first) to runs: CIDR ranges either nest
// or do not meet, so a stack of the ranges open at the current address gives each run's
// cohort: the innermost's.
template <typename Key>
void BuildRuns(const std::vector<CidrLine<Key>>& lines, CohortCidrMap::RunTable<Key>* out) {
  auto mark = [&](Key at, int32_t cohort) {
    if (!out->starts.empty() && out->starts.back() == at) {  // an inner range starts here too
      out->starts.pop_back();
      out->cohorts.pop_back();
    }
    const int32_t before = out->cohorts.empty() ? -1 : out->cohorts.back();
    if (before == cohort) return;
    out->starts.push_back(at);
    out->cohorts.push_back(cohort);
  };
  struct Open {
    Key last;
    int32_t cohort;
  };
  std::vector<Open> open;
  auto close = [&] {
    const Open top = open.back();
    open.pop_back();
    // A range that ends at the top of the address space has nothing after it.
    if (top.last == static_cast<Key>(~Key{0})) return;
    mark(static_cast<Key>(top.last + 1), open.empty() ? -1 : open.back().cohort);
  };
  for (const CidrLine<Key>& line : lines) {
    while (!open.empty() && open.back().last < line.first) close();
    mark(line.first, line.cohort);
    open.push_back(Open{line.last, line.cohort});
  }
  while (!open.empty()) close();
}

// Sorts the lines of one family and refuses a range written twice (naming both lines).
template <typename Key>
absl::Status SortLines(std::vector<CidrLine<Key>>* lines, std::string_view source, int family) {
  std::sort(lines->begin(), lines->end(), [](const CidrLine<Key>& a, const CidrLine<Key>& b) {
    if (a.first != b.first) return a.first < b.first;
    if (a.length != b.length) return a.length < b.length;
    return a.line < b.line;
  });
  for (size_t i = 1; i < lines->size(); ++i) {
    const CidrLine<Key>& a = (*lines)[i - 1];
    const CidrLine<Key>& b = (*lines)[i];
    if (a.first == b.first && a.length == b.length) {
      uint8_t bytes[16];
      ToBytes(b.first, bytes);
      char text[INET6_ADDRSTRLEN];
      inet_ntop(family, bytes, text, sizeof(text));
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d: %s/%d is on line %d too: one cohort per range", source, b.line,
                          text, b.length, a.line));
    }
  }
  return absl::OkStatus();
}

// The fields of a line without its comment: up to three (a third is an error).
size_t SplitFields(std::string_view line, std::string_view fields[3]) {
  size_t n = 0;
  size_t i = 0;
  while (i < line.size() && n < 3) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) break;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    fields[n++] = line.substr(start, i - start);
  }
  return n;
}

// What one parse collects before the map is built.
struct Collected {
  std::vector<CidrLine<uint32_t>> v4;
  std::vector<CidrLine<Uint128>> v6;
};

// Parses "ADDRESS[/LENGTH]" into `*v4` or `*v6` (cohort and line are the caller's); an error
// message (without file and line) when it is not a range.
absl::Status ParseRange(std::string_view text, CidrLine<uint32_t>* v4, CidrLine<Uint128>* v6,
                        bool* is_v4) {
  const size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  char buffer[INET6_ADDRSTRLEN];
  uint8_t bytes[16];
  int family = AF_UNSPEC;
  if (address.size() < sizeof(buffer) && address.find('\0') == std::string_view::npos) {
    address.copy(buffer, address.size());
    buffer[address.size()] = '\0';
    if (inet_pton(AF_INET, buffer, bytes) == 1) {
      family = AF_INET;
    } else if (inet_pton(AF_INET6, buffer, bytes) == 1) {
      family = AF_INET6;
    }
  }
  if (family == AF_UNSPEC) {
    return absl::InvalidArgumentError(
        absl::StrFormat("\"%s\" is not an IPv4 or IPv6 address", address));
  }
  const int bits = family == AF_INET ? 32 : 128;
  int length = bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (!ParseInteger(digits, &length) || length < 0 || length > bits) {
      return absl::InvalidArgumentError(
          absl::StrFormat("prefix length must be 0..%d for %s, got \"%s\"", bits,
                          family == AF_INET ? "IPv4" : "IPv6", digits));
    }
  }
  auto fill = [&](auto* line) -> absl::Status {
    using Key = decltype(line->first);
    const Key first = FromBytes<Key>(bytes);
    const Key host = HostMask<Key>(length);
    if ((first & host) != 0) {
      uint8_t network[16];
      ToBytes(static_cast<Key>(first & ~host), network);
      char text_network[INET6_ADDRSTRLEN];
      inet_ntop(family, network, text_network, sizeof(text_network));
      return absl::InvalidArgumentError(
          absl::StrFormat("%s has bits set beyond its prefix length (the range is %s/%d)", text,
                          text_network, length));
    }
    line->first = first;
    line->last = static_cast<Key>(first | host);
    line->length = length;
    return absl::OkStatus();
  };
  *is_v4 = family == AF_INET;
  if (*is_v4) return fill(v4);
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (length >= 96 && std::memcmp(bytes, kMapped, sizeof(kMapped)) == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s is an IPv4-mapped range: write it as IPv4 (%d.%d.%d.%d/%d): IPv4 clients are "
        "matched against the IPv4 lines",
        text, bytes[12], bytes[13], bytes[14], bytes[15], length - 96));
  }
  return fill(v6);
}

std::string JoinNames(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

absl::StatusOr<CohortCidrMapPtr> CohortCidrMap::Parse(std::string_view text,
                                                      std::string_view source,
                                                      std::vector<std::string>* cohorts,
                                                      NewCohorts new_cohorts) {
  // Cohort names to ids: the known ones, then those this file adds (committed at the end).
  std::map<std::string, int32_t, std::less<>> ids;
  for (size_t i = 0; i < cohorts->size(); ++i) ids.emplace((*cohorts)[i], static_cast<int32_t>(i));
  std::vector<std::string> added;
  Collected collected;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = line.substr(0, line.find('#'));
    auto error = [&](std::string_view message) {
      return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", source, line_number, message));
    };
    std::string_view fields[3];
    const size_t n = SplitFields(line, fields);
    if (n == 0) continue;
    if (n == 1) {
      return error(absl::StrFormat("expected CIDR COHORT, got only \"%s\"", fields[0]));
    }
    if (n == 3) {
      return error(
          absl::StrFormat("expected CIDR COHORT, got more after the cohort: \"%s\"", fields[2]));
    }
    CidrLine<uint32_t> v4;
    CidrLine<Uint128> v6;
    bool is_v4 = false;
    if (absl::Status s = ParseRange(fields[0], &v4, &v6, &is_v4); !s.ok()) {
      return error(std::string_view(s.message().data(), s.message().size()));
    }
    const std::string_view name = fields[1];
    if (!ValidRegionName(name)) {
      return error(absl::StrFormat(
          "\"%s\" is not a cohort name (1 to 63 of a-z, 0-9, '-', '_', '.', starting with a "
          "letter or digit)",
          name));
    }
    auto it = ids.find(name);
    if (it == ids.end()) {
      if (new_cohorts == NewCohorts::kRefuse) {
        return error(absl::StrFormat(
            "cohort \"%s\" is not one the running configuration knows (%s); a new cohort "
            "takes a configuration reload (SIGHUP)",
            name, JoinNames(*cohorts)));
      }
      const auto id = static_cast<int32_t>(cohorts->size() + added.size());
      it = ids.emplace(std::string(name), id).first;
      added.emplace_back(name);
    }
    if (is_v4) {
      v4.cohort = it->second;
      v4.line = line_number;
      collected.v4.push_back(v4);
    } else {
      v6.cohort = it->second;
      v6.line = line_number;
      collected.v6.push_back(v6);
    }
  }
  if (absl::Status s = SortLines(&collected.v4, source, AF_INET); !s.ok()) return s;
  if (absl::Status s = SortLines(&collected.v6, source, AF_INET6); !s.ok()) return s;

  auto out = std::make_shared<CohortCidrMap>();
  BuildRuns(collected.v4, &out->v4_);
  BuildRuns(collected.v6, &out->v6_);
  out->ranges_ = collected.v4.size() + collected.v6.size();
  static std::atomic<uint64_t> versions{0};
  out->version_ = ++versions;
  cohorts->insert(cohorts->end(), added.begin(), added.end());
  return CohortCidrMapPtr(std::move(out));
}

absl::StatusOr<CohortCidrMapPtr> CohortCidrMap::Load(const std::string& path,
                                                     std::vector<std::string>* cohorts,
                                                     NewCohorts new_cohorts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrFormat("cannot read %s: %s", path, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrFormat("cannot read %s: %s", path, std::strerror(errno)));
  }
  return Parse(text.str(), path, cohorts, new_cohorts);
}

int CohortCidrMap::Find(const SocketAddress& address) const {
  if (address.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address.sockaddr_ptr());
    return v4_.Find(ntohl(v4->sin_addr.s_addr));
  }
  if (address.family() != AF_INET6) return -1;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.sockaddr_ptr());
  const uint8_t* bytes = v6->sin6_addr.s6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) return v4_.Find(FromBytes<uint32_t>(bytes + 12));
  return v6_.Find(FromBytes<Uint128>(bytes));
}

}  // namespace sluice
