#include "proxy/dns/dns_message.h"

// Before ldns: without it, ldns/common.h defines bool, true and false as macros in C++.
#include <stdbool.h>

#include <ldns/ldns.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr char kApi[] = "api.example.com.";
// base64 of 32 bytes: what tsig-keygen prints for hmac-sha256.
constexpr char kSecret[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr char kOtherSecret[] = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

TsigKey Key(const std::string& secret = kSecret) {
  TsigKey key;
  key.name = "sluice-update.";
  key.secret = secret;
  return key;
}

Pkt FromWire(const std::string& wire) {
  ldns_pkt* pkt = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&pkt, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()),
            LDNS_STATUS_OK);
  return Pkt(pkt);
}

std::string ToWire(const ldns_pkt* pkt) {
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, pkt, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<const char*>(wire), size);
  free(wire);  // NOLINT: ldns allocates with malloc
  return out;
}

std::string Text(const ldns_rdf* rdf) {
  char* text = ldns_rdf2str(rdf);
  std::string out = text ? text : "";
  free(text);  // NOLINT
  return out;
}

ldns_rr* RR(const std::string& text) {
  ldns_rr* rr = nullptr;
  EXPECT_EQ(ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr), LDNS_STATUS_OK) << text;
  return rr;
}

// The reply a server signs to a request whose MAC was `request_mac`: the request itself
// turned into a response (QR set) and signed as one (RFC 8945 4.3: the request MAC first).
std::string SignedReply(const std::string& request, const std::string& request_mac,
                        const std::string& secret, int tsig_error = 0) {
  Pkt pkt = FromWire(request);
  if (!pkt) return "";
  ldns_rr_free(ldns_pkt_tsig(pkt.get()));
  ldns_pkt_set_tsig(pkt.get(), nullptr);
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_rdf* mac =
      ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, request_mac.size(), request_mac.data());
  EXPECT_EQ(
      ldns_pkt_tsig_sign(pkt.get(), "sluice-update.", secret.c_str(), 300, "hmac-sha256.", mac),
      LDNS_STATUS_OK);
  ldns_rdf_deep_free(mac);
  if (tsig_error != 0) {
    // ldns always signs with error 0: set the error field (the sixth) after the fact.
    ldns_rdf* old = ldns_rr_set_rdf(
        ldns_pkt_tsig(pkt.get()),
        ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, static_cast<uint16_t>(tsig_error)), 5);
    ldns_rdf_deep_free(old);
  }
  return ToWire(pkt.get());
}

DnsChange SampleChange() {
  DnsChange change;
  change.before[{kApi, "A"}] = {"192.0.2.1", "198.51.100.1"};
  change.before[{kApi, "AAAA"}] = {};
  change.remove = {{kApi, "A", "192.0.2.1"}};
  change.add = {{kApi, "AAAA", "2001:db8::1"}};
  return change;
}

TEST(ParseTsigKeyTest, BindFormat) {
  absl::StatusOr<TsigKey> key =
      ParseTsigKey("key \"Sluice-Update\" {\n\talgorithm hmac-sha256;\n\tsecret \"" +
                   std::string(kSecret) + "\";\n};\n");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->name, "sluice-update.");
  EXPECT_EQ(key->algorithm, "hmac-sha256");
  EXPECT_EQ(key->secret, kSecret);
  // One line, an algorithm in upper case with the final dot.
  key = ParseTsigKey("key \"k.\" { algorithm HMAC-SHA256.; secret \"" + std::string(kSecret) +
                     "\"; };");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->name, "k.");
}

TEST(ParseTsigKeyTest, KdigFormat) {
  absl::StatusOr<TsigKey> key = ParseTsigKey("hmac-sha256:sluice-update:" + std::string(kSecret));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->name, "sluice-update.");
  EXPECT_EQ(key->secret, kSecret);
  key = ParseTsigKey("  hmac-sha256:sluice-update.:" + std::string(kSecret) + "\n");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->name, "sluice-update.");
}

TEST(ParseTsigKeyTest, Refusals) {
  std::string secret = kSecret;
  struct Bad {
    std::string text;
    std::string error;
  };
  for (const Bad& bad : {
           Bad{"key \"k\" { algorithm hmac-md5; secret \"" + secret + "\"; };",
               "algorithm \"hmac-md5\": only hmac-sha256 is accepted"},
           Bad{"hmac-sha1:k:" + secret, "algorithm \"hmac-sha1\": only hmac-sha256"},
           Bad{"key \"k\" { algorithm hmac-sha256; secret \"not base64!\"; };",
               "the secret must be base64 of at least 16 bytes"},
           Bad{"hmac-sha256:k:@@@@", "the secret must be base64"},
           // 8 bytes: too short for HMAC-SHA256 (RFC 8945 allows truncation, not short keys).
           Bad{"hmac-sha256:k:" + absl::Base64Escape("01234567"), "at least 16 bytes"},
           Bad{"key \"k\" { algorithm hmac-sha256; };", "the secret must be base64"},
           Bad{"hmac-sha256:k:", "the secret must be base64"},
           Bad{"key \"k\" { algorithm hmac-sha256; secret \"" + secret + "\"; owner x; };",
               "unknown statement \"owner\""},
           Bad{"key \"k\" { secret \"" + secret + "\"; };", "algorithm \"\""},
           Bad{"key k { algorithm hmac-sha256; };", "expected key \"NAME\""},
           Bad{"key \"k\" algorithm hmac-sha256;", "expected { algorithm"},
           Bad{"hmac-sha256:" + secret, "expected BIND's key"},
           Bad{"", "expected BIND's key"},
           Bad{"hmac-sha256:bad name:" + secret, "key name:"},
       }) {
    absl::StatusOr<TsigKey> key = ParseTsigKey(bad.text);
    ASSERT_FALSE(key.ok()) << bad.text;
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(key.status().message().find(bad.error), absl::string_view::npos)
        << bad.text << " -> " << key.status();
    EXPECT_TRUE(std::string(key.status().message()).starts_with("key file: ")) << key.status();
  }
}

TEST(BuildDnsQueryTest, RoundTrip) {
  absl::StatusOr<std::string> wire = BuildDnsQuery(0x1234, kApi, "AAAA");
  ASSERT_TRUE(wire.ok()) << wire.status();
  Pkt pkt = FromWire(*wire);
  ASSERT_TRUE(pkt);
  EXPECT_EQ(ldns_pkt_get_opcode(pkt.get()), LDNS_PACKET_QUERY);
  EXPECT_FALSE(ldns_pkt_rd(pkt.get()));
  ASSERT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
  const ldns_rr* q = ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0);
  EXPECT_EQ(Text(ldns_rr_owner(q)), kApi);
  EXPECT_EQ(ldns_rr_get_type(q), LDNS_RR_TYPE_AAAA);
  EXPECT_EQ(ldns_rr_get_class(q), LDNS_RR_CLASS_IN);

  absl::StatusOr<DnsReply> reply = ParseDnsReply(*wire);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->id, 0x1234);
  EXPECT_EQ(reply->rcode, 0);
  EXPECT_FALSE(reply->truncated);
  EXPECT_TRUE(reply->answers.empty());
  EXPECT_FALSE(reply->signed_reply);

  EXPECT_FALSE(BuildDnsQuery(1, kApi, "MX").ok());
}

TEST(BuildDnsUpdateTest, SectionsOfAnRfc2136Update) {
  std::string mac = "untouched";
  absl::StatusOr<std::string> wire =
      BuildDnsUpdate(0xbeef, "example.com.", SampleChange(), 60, nullptr, &mac);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_EQ(mac, "untouched");
  Pkt pkt = FromWire(*wire);
  ASSERT_TRUE(pkt);
  EXPECT_EQ(ldns_pkt_id(pkt.get()), 0xbeef);
  EXPECT_EQ(ldns_pkt_get_opcode(pkt.get()), LDNS_PACKET_UPDATE);
  EXPECT_FALSE(ldns_pkt_qr(pkt.get()));
  EXPECT_FALSE(ldns_pkt_rd(pkt.get()));  // the header's Z bits are zero in an update
  EXPECT_EQ(ldns_pkt_tsig(pkt.get()), nullptr);

  // Zone section: the zone's SOA, class IN.
  ASSERT_EQ(ldns_update_zocount(pkt.get()), 1);
  const ldns_rr* zone = ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0);
  EXPECT_EQ(Text(ldns_rr_owner(zone)), "example.com.");
  EXPECT_EQ(ldns_rr_get_type(zone), LDNS_RR_TYPE_SOA);
  EXPECT_EQ(ldns_rr_get_class(zone), LDNS_RR_CLASS_IN);

  // Prerequisites: the A set exists with exactly its two values (class IN, TTL 0, data), the
  // AAAA set does not exist (class NONE, no data).
  ASSERT_EQ(ldns_update_prcount(pkt.get()), 3);
  const ldns_rr_list* pr = ldns_pkt_answer(pkt.get());
  for (size_t i = 0; i < 2; ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(pr, i);
    EXPECT_EQ(Text(ldns_rr_owner(rr)), kApi);
    EXPECT_EQ(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
    EXPECT_EQ(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
    EXPECT_EQ(ldns_rr_ttl(rr), 0u);
    ASSERT_EQ(ldns_rr_rd_count(rr), 1u);
    EXPECT_EQ(Text(ldns_rr_rdf(rr, 0)), i == 0 ? "192.0.2.1" : "198.51.100.1");
  }
  const ldns_rr* absent = ldns_rr_list_rr(pr, 2);
  EXPECT_EQ(ldns_rr_get_type(absent), LDNS_RR_TYPE_AAAA);
  EXPECT_EQ(ldns_rr_get_class(absent), LDNS_RR_CLASS_NONE);
  EXPECT_EQ(ldns_rr_ttl(absent), 0u);
  EXPECT_EQ(ldns_rr_rd_count(absent), 0u);

  // Updates: delete one record (class NONE, TTL 0), add one (class IN, the TTL).
  ASSERT_EQ(ldns_update_upcount(pkt.get()), 2);
  const ldns_rr_list* up = ldns_pkt_authority(pkt.get());
  const ldns_rr* del = ldns_rr_list_rr(up, 0);
  EXPECT_EQ(ldns_rr_get_type(del), LDNS_RR_TYPE_A);
  EXPECT_EQ(ldns_rr_get_class(del), LDNS_RR_CLASS_NONE);
  EXPECT_EQ(ldns_rr_ttl(del), 0u);
  ASSERT_EQ(ldns_rr_rd_count(del), 1u);
  EXPECT_EQ(Text(ldns_rr_rdf(del, 0)), "192.0.2.1");
  const ldns_rr* add = ldns_rr_list_rr(up, 1);
  EXPECT_EQ(Text(ldns_rr_owner(add)), kApi);
  EXPECT_EQ(ldns_rr_get_type(add), LDNS_RR_TYPE_AAAA);
  EXPECT_EQ(ldns_rr_get_class(add), LDNS_RR_CLASS_IN);
  EXPECT_EQ(ldns_rr_ttl(add), 60u);
  ASSERT_EQ(ldns_rr_rd_count(add), 1u);
  EXPECT_EQ(Text(ldns_rr_rdf(add, 0)), "2001:db8::1");
  EXPECT_EQ(ldns_update_ad(pkt.get()), 0);
}

TEST(BuildDnsUpdateTest, SignedWithTsig) {
  TsigKey key = Key();
  std::string mac;
  absl::StatusOr<std::string> wire =
      BuildDnsUpdate(7, "example.com.", SampleChange(), 60, &key, &mac);
  ASSERT_TRUE(wire.ok()) << wire.status();
  // The MAC as it is on the wire: its 2-byte length, then 32 bytes of HMAC-SHA256.
  ASSERT_EQ(mac.size(), 34u);
  EXPECT_EQ(mac.substr(0, 2), std::string("\0\x20", 2));
  Pkt pkt = FromWire(*wire);
  ASSERT_TRUE(pkt);
  const ldns_rr* tsig = ldns_pkt_tsig(pkt.get());
  ASSERT_NE(tsig, nullptr);
  EXPECT_EQ(Text(ldns_rr_owner(tsig)), "sluice-update.");
  EXPECT_EQ(ldns_rr_get_class(tsig), LDNS_RR_CLASS_ANY);
  EXPECT_EQ(Text(ldns_rr_rdf(tsig, 0)), "hmac-sha256.");
  // The server verifies it with the same key (the request itself: no request MAC).
  EXPECT_TRUE(ldns_pkt_tsig_verify(pkt.get(), reinterpret_cast<const uint8_t*>(wire->data()),
                                   wire->size(), "sluice-update.", kSecret, nullptr));
  // The same key parsed from a file signs the same way.
  absl::StatusOr<TsigKey> parsed = ParseTsigKey("hmac-sha256:Sluice-Update:" + key.secret);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(BuildDnsUpdate(7, "example.com.", SampleChange(), 60, &*parsed, &mac).ok());
}

TEST(BuildDnsUpdateTest, RefusesWhatIsNotARecord) {
  DnsChange change;
  change.add = {{kApi, "MX", "10 mail.example.com."}};
  EXPECT_FALSE(BuildDnsUpdate(1, "example.com.", change, 60, nullptr, nullptr).ok());
  change.add = {{kApi, "A", "not-an-address"}};
  EXPECT_FALSE(BuildDnsUpdate(1, "example.com.", change, 60, nullptr, nullptr).ok());
}

TEST(VerifyDnsReplyTest, ASignedReplyVerifiesWithTheRightKeyOnly) {
  TsigKey key = Key();
  std::string mac;
  absl::StatusOr<std::string> request =
      BuildDnsUpdate(7, "example.com.", SampleChange(), 60, &key, &mac);
  ASSERT_TRUE(request.ok()) << request.status();
  std::string reply = SignedReply(*request, mac, kSecret);
  ASSERT_FALSE(reply.empty());

  EXPECT_TRUE(VerifyDnsReply(reply, key, mac));
  absl::StatusOr<DnsReply> parsed = ParseDnsReply(reply);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->signed_reply);
  EXPECT_EQ(parsed->tsig_error, 0);
  EXPECT_EQ(parsed->id, 7);

  EXPECT_FALSE(VerifyDnsReply(reply, Key(kOtherSecret), mac));
  TsigKey other_name = key;
  other_name.name = "someone-else.";
  EXPECT_FALSE(VerifyDnsReply(reply, other_name, mac));
  // Signed for another request.
  std::string other_mac = mac;
  other_mac[5] ^= 1;
  EXPECT_FALSE(VerifyDnsReply(reply, key, other_mac));
  // Signed with another key.
  EXPECT_FALSE(VerifyDnsReply(SignedReply(*request, mac, kOtherSecret), key, mac));
  // A byte flipped in the message (a letter of the zone name) or in the MAC.
  std::string flipped = reply;
  flipped[13] ^= 0x20;  // "example" -> "Example" is the same name, not the same bytes
  EXPECT_FALSE(VerifyDnsReply(flipped, key, mac));
  flipped = reply;
  flipped[flipped.size() - 10] ^= 1;
  EXPECT_FALSE(VerifyDnsReply(flipped, key, mac));
  // Signed with an algorithm ldns does not know: not verified (and, under LeakSanitizer, the
  // TSIG record ldns takes out of the packet is not leaked).
  Pkt unknown = FromWire(reply);
  ASSERT_TRUE(unknown);
  ldns_rdf_deep_free(
      ldns_rr_set_rdf(ldns_pkt_tsig(unknown.get()), ldns_dname_new_frm_str("hmac-foo."), 0));
  EXPECT_FALSE(VerifyDnsReply(ToWire(unknown.get()), key, mac));
  // Unsigned, or not a message at all.
  EXPECT_FALSE(VerifyDnsReply(*BuildDnsQuery(7, kApi, "A"), key, mac));
  EXPECT_FALSE(VerifyDnsReply("", key, mac));
  EXPECT_FALSE(VerifyDnsReply(reply.substr(0, reply.size() - 1), key, mac));
}

TEST(ParseDnsReplyTest, GarbageIsRefusedNeverACrash) {
  for (const std::string& bad :
       {std::string(), std::string("\x12\x34\x81\x80\x00", 5),
        // A header that promises a question that is not there.
        std::string("\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00", 12),
        std::string(40, '\xff')}) {
    absl::StatusOr<DnsReply> reply = ParseDnsReply(bad);
    ASSERT_FALSE(reply.ok()) << bad.size();
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(reply.status().message().find("is not a DNS message"), absl::string_view::npos);
  }
  std::mt19937 random(42);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(random() % 200, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    absl::StatusOr<DnsReply> reply = ParseDnsReply(bytes);
    if (!reply.ok()) {
      EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(ParseDnsReplyTest, AddressRecordsOfTheAnswerInCanonicalForm) {
  Pkt pkt(ldns_pkt_new());
  ldns_pkt_set_id(pkt.get(), 99);
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_pkt_set_aa(pkt.get(), true);
  ldns_pkt_set_tc(pkt.get(), true);
  ldns_rr* question = nullptr;
  ASSERT_EQ(ldns_rr_new_question_frm_str(&question, "API.Example.COM. IN A", nullptr, nullptr),
            LDNS_STATUS_OK);
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_QUESTION, question);
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, RR("API.Example.COM. 60 IN A 192.0.2.1"));
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, RR("api.example.com. 60 IN A 198.51.100.1"));
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, RR("Api.Example.Com. 60 IN AAAA 2001:DB8:0::1"));
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER,
                   RR("www.example.com. 60 IN CNAME api.example.com."));
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, RR("api.example.com. 60 CH A 192.0.2.9"));
  // Not the answer section: not an answer.
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ADDITIONAL, RR("ns.example.com. 60 IN A 192.0.2.53"));

  absl::StatusOr<DnsReply> reply = ParseDnsReply(ToWire(pkt.get()));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->id, 99);
  EXPECT_TRUE(reply->truncated);
  EXPECT_EQ(reply->answers, (std::vector<DnsRecord>{{kApi, "A", "192.0.2.1"},
                                                    {kApi, "A", "198.51.100.1"},
                                                    {kApi, "AAAA", "2001:db8::1"}}));
  EXPECT_EQ(RRsetIn(*reply, kApi, "A"), (std::set<std::string>{"192.0.2.1", "198.51.100.1"}));
  EXPECT_EQ(RRsetIn(*reply, kApi, "AAAA"), (std::set<std::string>{"2001:db8::1"}));
  EXPECT_TRUE(RRsetIn(*reply, "www.example.com.", "A").empty());
}

TEST(ParseDnsReplyTest, RcodeAndTsigError) {
  Pkt pkt(ldns_pkt_new());
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_pkt_set_rcode(pkt.get(), LDNS_RCODE_NXRRSET);
  absl::StatusOr<DnsReply> reply = ParseDnsReply(ToWire(pkt.get()));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->rcode, 8);
  EXPECT_EQ(DnsRcodeName(reply->rcode), "NXRRSET");
  EXPECT_FALSE(reply->signed_reply);

  // A server that does not know the key answers NOTAUTH with TSIG error BADKEY.
  TsigKey key = Key();
  std::string mac;
  absl::StatusOr<std::string> request =
      BuildDnsUpdate(7, "example.com.", SampleChange(), 60, &key, &mac);
  ASSERT_TRUE(request.ok()) << request.status();
  Pkt refused = FromWire(SignedReply(*request, mac, kSecret, 17));
  ASSERT_TRUE(refused);
  ldns_pkt_set_rcode(refused.get(), LDNS_RCODE_NOTAUTH);
  std::string wire = ToWire(refused.get());
  reply = ParseDnsReply(wire);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->rcode, 9);
  EXPECT_EQ(DnsRcodeName(reply->rcode), "NOTAUTH");
  EXPECT_TRUE(reply->signed_reply);
  EXPECT_EQ(reply->tsig_error, 17);
  EXPECT_EQ(TsigErrorName(reply->tsig_error), "BADKEY");
  EXPECT_FALSE(VerifyDnsReply(wire, key, mac));
}

TEST(DnsNamesTest, RcodesAndTsigErrors) {
  EXPECT_EQ(DnsRcodeName(0), "NOERROR");
  EXPECT_EQ(DnsRcodeName(2), "SERVFAIL");
  EXPECT_EQ(DnsRcodeName(5), "REFUSED");
  EXPECT_EQ(DnsRcodeName(10), "NOTZONE");
  EXPECT_EQ(DnsRcodeName(23), "RCODE 23");
  EXPECT_EQ(DnsRcodeName(-1), "RCODE -1");
  EXPECT_EQ(TsigErrorName(0), "NOERROR");
  EXPECT_EQ(TsigErrorName(16), "BADSIG");
  EXPECT_EQ(TsigErrorName(18), "BADTIME");
  EXPECT_EQ(TsigErrorName(22), "BADTRUNC");
  EXPECT_EQ(TsigErrorName(99), "TSIG error 99");
}

}  // namespace
}  // namespace sluice
