#include "proxy/dns/dns_message.h"

// Before ldns: without it, ldns/common.h defines bool, true and false as macros in C++, and a
// standard header included after it (<optional>'s operator<=>) no longer compiles.
#include <stdbool.h>

#include <ldns/ldns.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"

namespace sluice {

namespace {

constexpr uint16_t kTsigFudgeSeconds = 300;  // RFC 8945's recommendation
constexpr size_t kMinSecretBytes = 16;

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct ListFree {
  void operator()(ldns_rr_list* l) const { ldns_rr_list_deep_free(l); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;
using RRList = std::unique_ptr<ldns_rr_list, ListFree>;
using Rdf = std::unique_ptr<ldns_rdf, RdfFree>;

std::string RdfText(const ldns_rdf* rdf) {
  char* text = rdf ? ldns_rdf2str(rdf) : nullptr;
  std::string out = text ? text : "";
  free(text);  // NOLINT: ldns allocates with malloc
  return out;
}

absl::StatusOr<ldns_rr_type> RRType(const std::string& type) {
  if (type == "A") return LDNS_RR_TYPE_A;
  if (type == "AAAA") return LDNS_RR_TYPE_AAAA;
  return absl::InvalidArgumentError(absl::StrFormat("record type %s is not managed", type));
}

// A record for an update section: class IN with a TTL and data, class NONE with data (delete
// this record, or "exists with this value" in prerequisites with class IN and TTL 0), or class
// NONE without data ("this record set does not exist").
absl::StatusOr<ldns_rr*> MakeRR(const std::string& name, const std::string& type,
                                const std::string* data, ldns_rr_class cls, uint32_t ttl) {
  absl::StatusOr<ldns_rr_type> rr_type = RRType(type);
  if (!rr_type.ok()) return rr_type.status();
  ldns_rdf* owner = ldns_dname_new_frm_str(name.c_str());
  if (!owner) return absl::InvalidArgumentError("not a DNS name: " + name);
  ldns_rr* rr = ldns_rr_new();
  ldns_rr_set_owner(rr, owner);
  ldns_rr_set_type(rr, *rr_type);
  ldns_rr_set_class(rr, cls);
  ldns_rr_set_ttl(rr, ttl);
  if (data) {
    ldns_rdf* rdata = ldns_rdf_new_frm_str(
        *rr_type == LDNS_RR_TYPE_A ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, data->c_str());
    if (!rdata) {
      ldns_rr_free(rr);
      return absl::InvalidArgumentError(absl::StrFormat("%s %s: bad data %s", name, type, *data));
    }
    ldns_rr_push_rdf(rr, rdata);
  }
  return rr;
}

absl::StatusOr<std::string> ToWire(const ldns_pkt* pkt) {
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, pkt, &size) != LDNS_STATUS_OK || !wire) {
    free(wire);  // NOLINT
    return absl::InternalError("cannot encode the DNS message");
  }
  std::string out(reinterpret_cast<const char*>(wire), size);
  free(wire);  // NOLINT
  return out;
}

std::string KeyName(const TsigKey& key) { return key.name; }

}  // namespace

absl::StatusOr<TsigKey> ParseTsigKey(std::string_view text) {
  TsigKey key;
  std::string_view body = StripWhitespace(text);
  if (body.starts_with("key")) {
    // key "name" { algorithm hmac-sha256; secret "base64"; };
    size_t q1 = body.find('"');
    size_t q2 = q1 == std::string_view::npos ? q1 : body.find('"', q1 + 1);
    if (q2 == std::string_view::npos) {
      return absl::InvalidArgumentError("key file: expected key \"NAME\" { ... };");
    }
    key.name = std::string(body.substr(q1 + 1, q2 - q1 - 1));
    size_t open = body.find('{', q2);
    size_t close = body.rfind('}');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
      return absl::InvalidArgumentError("key file: expected { algorithm ...; secret \"...\"; }");
    }
    key.algorithm.clear();
    std::string_view rest = body.substr(open + 1, close - open - 1);
    while (!rest.empty()) {
      size_t semicolon = rest.find(';');
      std::string_view statement = StripWhitespace(rest.substr(0, semicolon));
      rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
      if (statement.empty()) continue;
      size_t space = statement.find_first_of(" \t\n");
      std::string_view word = statement.substr(0, space);
      std::string_view value = space == std::string_view::npos
                                   ? std::string_view()
                                   : StripWhitespace(statement.substr(space));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (word == "algorithm") {
        key.algorithm = AsciiLower(value);
      } else if (word == "secret") {
        key.secret = std::string(value);
      } else {
        return absl::InvalidArgumentError(
            absl::StrFormat("key file: unknown statement \"%s\"", std::string(word)));
      }
    }
  } else {
    size_t c1 = body.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : body.find(':', c1 + 1);
    if (c2 == std::string_view::npos) {
      return absl::InvalidArgumentError(
          "key file: expected BIND's key \"NAME\" { algorithm hmac-sha256; secret \"...\"; }; "
          "or hmac-sha256:NAME:SECRET");
    }
    key.algorithm = AsciiLower(body.substr(0, c1));
    key.name = std::string(body.substr(c1 + 1, c2 - c1 - 1));
    key.secret = std::string(StripWhitespace(body.substr(c2 + 1)));
  }
  if (key.algorithm.ends_with(".")) key.algorithm.pop_back();
  if (key.algorithm != "hmac-sha256") {
    return absl::InvalidArgumentError(
        absl::StrFormat("key file: algorithm \"%s\": only hmac-sha256 is accepted", key.algorithm));
  }
  absl::StatusOr<std::string> name = CanonicalDnsName(key.name);
  if (!name.ok()) {
    return absl::InvalidArgumentError("key file: key name: " +
                                      std::string(name.status().message()));
  }
  key.name = *name;
  std::string raw;
  if (!absl::Base64Unescape(key.secret, &raw) || raw.size() < kMinSecretBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "key file: the secret must be base64 of at least %d bytes", kMinSecretBytes));
  }
  return key;
}

absl::StatusOr<std::string> BuildDnsQuery(uint16_t id, const std::string& name,
                                          const std::string& type) {
  absl::StatusOr<ldns_rr_type> rr_type = RRType(type);
  if (!rr_type.ok()) return rr_type.status();
  ldns_rdf* owner = ldns_dname_new_frm_str(name.c_str());
  if (!owner) return absl::InvalidArgumentError("not a DNS name: " + name);
  Pkt pkt(ldns_pkt_query_new(owner, *rr_type, LDNS_RR_CLASS_IN, 0));  // takes `owner`
  if (!pkt) return absl::InternalError("cannot build a DNS query");
  ldns_pkt_set_id(pkt.get(), id);
  return ToWire(pkt.get());
}

absl::StatusOr<std::string> BuildDnsUpdate(uint16_t id, const std::string& zone,
                                           const DnsChange& change, uint32_t ttl,
                                           const TsigKey* key, std::string* request_mac) {
  RRList prerequisites(ldns_rr_list_new());
  RRList updates(ldns_rr_list_new());
  auto push = [](ldns_rr_list* list, absl::StatusOr<ldns_rr*> rr) -> absl::Status {
    if (!rr.ok()) return rr.status();
    ldns_rr_list_push_rr(list, *rr);
    return absl::OkStatus();
  };
  for (const auto& [key_pair, data] : change.before) {
    const auto& [name, type] = key_pair;
    if (data.empty()) {
      if (absl::Status s =
              push(prerequisites.get(), MakeRR(name, type, nullptr, LDNS_RR_CLASS_NONE, 0));
          !s.ok()) {
        return s;
      }
    }
    for (const std::string& d : data) {
      if (absl::Status s = push(prerequisites.get(), MakeRR(name, type, &d, LDNS_RR_CLASS_IN, 0));
          !s.ok()) {
        return s;
      }
    }
  }
  for (const DnsRecord& r : change.remove) {
    if (absl::Status s =
            push(updates.get(), MakeRR(r.name, r.type, &r.data, LDNS_RR_CLASS_NONE, 0));
        !s.ok()) {
      return s;
    }
  }
  for (const DnsRecord& r : change.add) {
    if (absl::Status s =
            push(updates.get(), MakeRR(r.name, r.type, &r.data, LDNS_RR_CLASS_IN, ttl));
        !s.ok()) {
      return s;
    }
  }
  ldns_rdf* zone_rdf = ldns_dname_new_frm_str(zone.c_str());
  if (!zone_rdf) return absl::InvalidArgumentError("not a DNS name: " + zone);
  Pkt pkt(ldns_update_pkt_new(zone_rdf, LDNS_RR_CLASS_IN, prerequisites.get(), updates.get(),
                              nullptr));  // takes `zone_rdf`, copies the lists
  if (!pkt) return absl::InternalError("cannot build a DNS update");
  ldns_pkt_set_id(pkt.get(), id);
  // ldns builds updates as queries with RD set; in an update that bit is reserved (RFC 2136
  // 2.2: zero on creation).
  ldns_pkt_set_rd(pkt.get(), false);
  if (key) {
    std::string name = KeyName(*key);
    if (ldns_pkt_tsig_sign(pkt.get(), name.c_str(), key->secret.c_str(), kTsigFudgeSeconds,
                           "hmac-sha256.", nullptr) != LDNS_STATUS_OK) {
      return absl::InvalidArgumentError("cannot sign the update with TSIG key " + key->name);
    }
    const ldns_rr* tsig = ldns_pkt_tsig(pkt.get());
    const ldns_rdf* mac = tsig && ldns_rr_rd_count(tsig) > 3 ? ldns_rr_rdf(tsig, 3) : nullptr;
    if (!mac) return absl::InternalError("the signed update has no MAC");
    if (request_mac) {
      request_mac->assign(reinterpret_cast<const char*>(ldns_rdf_data(mac)), ldns_rdf_size(mac));
    }
  }
  return ToWire(pkt.get());
}

absl::StatusOr<DnsReply> ParseDnsReply(std::string_view wire) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) !=
          LDNS_STATUS_OK ||
      !raw) {
    if (raw) ldns_pkt_free(raw);
    return absl::InvalidArgumentError(
        absl::StrFormat("the server's answer is not a DNS message (%d bytes)", wire.size()));
  }
  Pkt pkt(raw);
  DnsReply reply;
  reply.id = ldns_pkt_id(pkt.get());
  reply.rcode = static_cast<int>(ldns_pkt_get_rcode(pkt.get()));
  reply.truncated = ldns_pkt_tc(pkt.get());
  const ldns_rr_list* answers = ldns_pkt_answer(pkt.get());
  for (size_t i = 0; answers && i < ldns_rr_list_rr_count(answers); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answers, i);
    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN || ldns_rr_rd_count(rr) != 1) continue;
    std::string type;
    if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A) {
      type = "A";
    } else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_AAAA) {
      type = "AAAA";
    } else {
      continue;
    }
    absl::StatusOr<DnsRecord> record =
        CanonicalDnsRecord(".", RdfText(ldns_rr_owner(rr)), type, RdfText(ldns_rr_rdf(rr, 0)));
    if (record.ok()) reply.answers.push_back(*std::move(record));  // else no name we manage
  }
  if (const ldns_rr* tsig = ldns_pkt_tsig(pkt.get()); tsig) {
    reply.signed_reply = true;
    if (ldns_rr_rd_count(tsig) > 5 && ldns_rr_rdf(tsig, 5) &&
        ldns_rdf_size(ldns_rr_rdf(tsig, 5)) == 2) {
      reply.tsig_error = ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
    }
  }
  return reply;
}

bool VerifyDnsReply(std::string_view wire, const TsigKey& key, const std::string& request_mac) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) !=
          LDNS_STATUS_OK ||
      !raw) {
    if (raw) ldns_pkt_free(raw);
    return false;
  }
  Pkt pkt(raw);
  ldns_rr* tsig = ldns_pkt_tsig(pkt.get());
  if (!tsig) return false;
  Rdf mac(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, request_mac.size(), request_mac.data()));
  std::string name = KeyName(key);
  bool verified = ldns_pkt_tsig_verify(pkt.get(), reinterpret_cast<const uint8_t*>(wire.data()),
                                       wire.size(), name.c_str(), key.secret.c_str(), mac.get());
  // ldns (1.8.3) takes the TSIG record out of the packet while it verifies and does not put it
  // back when it cannot compute the MAC (an algorithm it does not know): put it back, so that
  // it is freed with the packet (found by dns_reply_fuzz as a leak).
  if (ldns_pkt_tsig(pkt.get()) == nullptr) ldns_pkt_set_tsig(pkt.get(), tsig);
  return verified;
}

std::string DnsRcodeName(int rcode) {
  static constexpr const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                           "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                           "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (rcode >= 0 && rcode < static_cast<int>(std::size(kNames))) return kNames[rcode];
  return absl::StrFormat("RCODE %d", rcode);
}

std::string TsigErrorName(int error) {
  switch (error) {
    case 0:
      return "NOERROR";
    case 16:
      return "BADSIG";
    case 17:
      return "BADKEY";
    case 18:
      return "BADTIME";
    case 22:
      return "BADTRUNC";
  }
  return absl::StrFormat("TSIG error %d", error);
}

std::set<std::string> RRsetIn(const DnsReply& reply, const std::string& name,
                              const std::string& type) {
  std::set<std::string> out;
  for (const DnsRecord& r : reply.answers) {
    if (r.name == name && r.type == type) out.insert(r.data);
  }
  return out;
}

}  // namespace sluice
