#include "proxy/fleet/etcd_grpc_protocol.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

std::string Hex(const std::string& hex) { return absl::HexStringToBytes(hex); }

// Messages as etcd 3.4.23 sent them (framed), captured with a python3-h2 client: a keep-alive
// of a live lease (TTL 60), of an unknown one (12345: no TTL), and a watch of /k/ that saw its
// creation, a PUT of /k/a = "hello" under the lease, and its DELETE.
const std::string kKeepAlive = Hex(
    "00000000280a1a08b298eaf1948386fccd0110cdd2918bd2b881cf8e01180120021087aef7fdbdc8e8a669183c");
const std::string kKeepAliveUnknown =
    Hex("000000001f0a1a08b298eaf1948386fccd0110cdd2918bd2b881cf8e01180120021"
        "0b960");
const std::string kWatchCreated =
    Hex("000000001e0a1a08b298eaf1948386fccd0110cdd2918bd2b881cf8e01180120021801");
const std::string kWatchPut = Hex(
    "000000003d0a1a08b298eaf1948386fccd0110cdd2918bd2b881cf8e01180220025a1f121d0a042f6b2f6110021802"
    "20012a0568656c6c6f3087aef7fdbdc8e8a669");
const std::string kWatchDelete =
    Hex("000000002a0a1a08b298eaf1948386fccd0110cdd2918bd2b881cf8e01180320025a0c080112080a042f6b2f61"
        "1803");
constexpr int64_t kLease = 7587899359589422855;

// Whether `text` contains one of the '|'-separated `needles` (no std::regex: g++ 12 warns
// about its innards under the sanitizers).
bool MentionsAny(std::string_view text, std::string_view needles) {
  while (true) {
    size_t bar = needles.find('|');
    if (text.find(needles.substr(0, bar)) != std::string_view::npos) return true;
    if (bar == std::string_view::npos) return false;
    needles.remove_prefix(bar + 1);
  }
}

// The messages of a framed stream, fed in pieces of `chunk` bytes.
std::vector<std::string> Messages(const std::string& stream, size_t chunk) {
  GrpcMessageReader reader;
  std::vector<std::string> out;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    absl::Status s = reader.Feed(std::string_view(stream).substr(at, chunk),
                                 [&](std::string_view m) { out.emplace_back(m); });
    EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_FALSE(reader.partial());
  return out;
}

TEST(EtcdGrpcProtocolTest, RequestsAreWhatEtcdAccepted) {
  // The requests of the capture above, byte for byte.
  EXPECT_EQ(GrpcFrame(EtcdGrpcKeepAliveRequest(kLease)), Hex("000000000a0887aef7fdbdc8e8a669"));
  EXPECT_EQ(GrpcFrame(EtcdGrpcWatchCreateRequest("/k/", "/k0", 0)),
            Hex("000000000c0a0a0a032f6b2f12032f6b30"));
  // A start revision; a negative lease takes protobuf's ten bytes.
  EXPECT_EQ(EtcdGrpcWatchCreateRequest("a", "", 300), Hex("0a060a016118ac02"));
  EXPECT_EQ(EtcdGrpcKeepAliveRequest(-1), Hex("08ffffffffffffffffff01"));
  // An empty create request still says which request it is.
  EXPECT_EQ(EtcdGrpcWatchCreateRequest("", "", 0), Hex("0a00"));
}

TEST(EtcdGrpcProtocolTest, KeepAliveAnswers) {
  std::vector<std::string> m = Messages(kKeepAlive + kKeepAliveUnknown, 1);
  ASSERT_EQ(m.size(), 2u);
  absl::StatusOr<EtcdLease> live = ParseEtcdGrpcKeepAliveResponse(m[0]);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->id, kLease);
  EXPECT_EQ(live->ttl_seconds, 60);
  absl::StatusOr<EtcdLease> gone = ParseEtcdGrpcKeepAliveResponse(m[1]);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->id, 12345);
  EXPECT_EQ(gone->ttl_seconds, 0);  // etcd: the lease is not there
}

TEST(EtcdGrpcProtocolTest, WatchMessages) {
  for (size_t chunk : {1, 7, 1000}) {
    std::vector<std::string> m = Messages(kWatchCreated + kWatchPut + kWatchDelete, chunk);
    ASSERT_EQ(m.size(), 3u) << chunk;
    absl::StatusOr<EtcdWatchMessage> created = ParseEtcdGrpcWatchResponse(m[0]);
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_TRUE(created->created);
    EXPECT_EQ(created->revision, 1);
    EXPECT_TRUE(created->events.empty());

    absl::StatusOr<EtcdWatchMessage> put = ParseEtcdGrpcWatchResponse(m[1]);
    ASSERT_TRUE(put.ok()) << put.status();
    EXPECT_FALSE(put->created);
    EXPECT_EQ(put->revision, 2);
    ASSERT_EQ(put->events.size(), 1u);
    EXPECT_FALSE(put->events[0].deleted);
    EXPECT_EQ(put->events[0].kv.key, "/k/a");
    EXPECT_EQ(put->events[0].kv.value, "hello");
    EXPECT_EQ(put->events[0].kv.create_revision, 2);
    EXPECT_EQ(put->events[0].kv.mod_revision, 2);
    EXPECT_EQ(put->events[0].kv.version, 1);
    EXPECT_EQ(put->events[0].kv.lease, kLease);

    absl::StatusOr<EtcdWatchMessage> deleted = ParseEtcdGrpcWatchResponse(m[2]);
    ASSERT_TRUE(deleted.ok()) << deleted.status();
    ASSERT_EQ(deleted->events.size(), 1u);
    EXPECT_TRUE(deleted->events[0].deleted);
    EXPECT_EQ(deleted->events[0].kv.key, "/k/a");
    EXPECT_EQ(deleted->events[0].kv.mod_revision, 3);
    EXPECT_TRUE(deleted->events[0].kv.value.empty());
  }
}

TEST(EtcdGrpcProtocolTest, CanceledWatch) {
  // canceled, compact_revision 7, cancel_reason "compacted", and an unknown field 9 (varint)
  // and 10 (fixed64) skipped.
  std::string m = Hex("200128073209") + "compacted" + Hex("4801") + Hex("510102030405060708");
  absl::StatusOr<EtcdWatchMessage> parsed = ParseEtcdGrpcWatchResponse(m);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->canceled);
  EXPECT_EQ(parsed->compact_revision, 7);
  EXPECT_EQ(parsed->cancel_reason, "compacted");
}

TEST(EtcdGrpcProtocolTest, MalformedMessagesAreRefusedWithAReason) {
  struct Case {
    std::string message;
    const char* why;
  };
  const Case watch_cases[] = {
      {Hex("0a05"), "longer than the message"},          // header says 5 bytes, 0 follow
      {Hex("18"), "ends inside a number"},               // created, no value
      {Hex("18ffffffffffffffffffff01"), "longer than"},  // an 11-byte varint
      {Hex("1a00"), "not a number"},                     // created as bytes
      {Hex("5a00"), "without a key-value"},              // an event with nothing
      {Hex("5a04080512"), "ends inside|longer than"},    // truncated event
      {Hex("5a020805"), "other than PUT or DELETE"},     // event type 5
      {Hex("5a02120"
           "0"),
       "without a key"},                                    // a key-value without a key
      {Hex("3801"), "fragment"},                            // a fragment
      {Hex("0b"), "wire type"},                             // a group
      {Hex("00"), "numbered 0"},                            // field 0
      {Hex("28ffffffffffffffffff01"), "negative compact"},  // compact_revision -1
  };
  for (const Case& c : watch_cases) {
    absl::StatusOr<EtcdWatchMessage> m = ParseEtcdGrpcWatchResponse(c.message);
    ASSERT_FALSE(m.ok()) << absl::BytesToHexString(c.message);
    EXPECT_FALSE(m.status().message().empty());
    EXPECT_TRUE(MentionsAny(std::string(m.status().message()), c.why))
        << m.status() << " for " << absl::BytesToHexString(c.message);
  }
  // A keep-alive answer must name its lease.
  absl::StatusOr<EtcdLease> lease = ParseEtcdGrpcKeepAliveResponse(Hex("183c"));
  ASSERT_FALSE(lease.ok());
  EXPECT_NE(lease.status().message().find("without a lease ID"), std::string::npos);
  EXPECT_TRUE(ParseEtcdGrpcKeepAliveResponse(Hex("1001")).ok());
  EXPECT_FALSE(ParseEtcdGrpcKeepAliveResponse(Hex("10")).ok());
}

TEST(EtcdGrpcProtocolTest, FramingLimits) {
  GrpcMessageReader reader;
  auto none = [](std::string_view) { ADD_FAILURE() << "no message expected"; };
  // Compressed: never asked for.
  absl::Status s = reader.Feed(Hex("0100000001") + "x", none);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("compressed"), std::string::npos) << s;
  // Over 16 MiB: refused from the prefix, before a byte of it is kept.
  GrpcMessageReader big;
  s = big.Feed(Hex("0001000001"), none);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  // A partial message is held, an empty one is a message.
  GrpcMessageReader reader2;
  std::vector<std::string> got;
  ASSERT_TRUE(
      reader2.Feed(Hex("0000000000000000"), [&](std::string_view m) { got.emplace_back(m); }).ok());
  EXPECT_EQ(got.size(), 1u);
  EXPECT_TRUE(reader2.partial());
}

TEST(EtcdGrpcProtocolTest, TrailersStatus) {
  EXPECT_TRUE(EtcdGrpcStatus("0", "").ok());
  absl::Status s = EtcdGrpcStatus("16", "etcdserver: invalid auth token");
  EXPECT_TRUE(absl::IsUnauthenticated(s)) << s;
  EXPECT_EQ(s.message(), "etcd: etcdserver: invalid auth token");
  s = EtcdGrpcStatus("14", "etcdserver: no leader");
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  s = EtcdGrpcStatus("11", "etcdserver: mvcc: required revision has been compacted");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  // grpc-message is percent-encoded; a bad escape is kept as it came.
  s = EtcdGrpcStatus("4", "request%20timed%20out%zz");
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(s.message(), "etcd: request timed out%zz");
  s = EtcdGrpcStatus("12", "");
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(s.message(), "etcd: gRPC status 12");
  for (const char* bad : {"", "17", "-1", "x"}) {
    s = EtcdGrpcStatus(bad, "m");
    EXPECT_TRUE(absl::IsUnknown(s)) << bad << ": " << s;
  }
}

}  // namespace
}  // namespace sluice
