#include "proxy/fleet/etcd_protocol.h"

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

using nlohmann::json;

// Replies as etcd 3.4.23's JSON gateway sends them.
constexpr char kRangeReply[] =
    R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952",)"
    R"("revision":"2","raft_term":"2"},"kvs":[{"key":"L3NsdWljZS9zdGF0ZQ==",)"
    R"("create_revision":"2","mod_revision":"2","version":"1","value":"aGVsbG8="}],"count":"1"})";
constexpr char kTxnFailedReply[] =
    R"({"header":{"cluster_id":"1","member_id":"2","revision":"2","raft_term":"2"},)"
    R"("responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":)"
    R"("L3NsdWljZS9zdGF0ZQ==","create_revision":"2","mod_revision":"2","version":"1",)"
    R"("value":"aGVsbG8="}],"count":"1"}}]})";
constexpr char kKeepAliveReply[] =
    R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"2"},)"
    R"("ID":"2324035538630474764","TTL":"5"}})"
    "\n";
constexpr char kExpiredKeepAliveReply[] =
    R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"2"},)"
    R"("ID":"12345"}})"
    "\n";

TEST(EtcdProtocolTest, PrefixEnd) {
  EXPECT_EQ(EtcdPrefixEnd("/sluice/"), "/sluice0");
  EXPECT_EQ(EtcdPrefixEnd("a\xff"), "b");
  EXPECT_EQ(EtcdPrefixEnd("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdProtocolTest, RequestBodiesCarryBase64KeysAndStringNumbers) {
  json range = json::parse(EtcdRangeBody("/sluice/", EtcdPrefixEnd("/sluice/")));
  EXPECT_EQ(range["key"], Base64Encode("/sluice/"));
  EXPECT_EQ(range["range_end"], Base64Encode("/sluice0"));
  json put = json::parse(EtcdPutBody("k", "v", 7));
  EXPECT_EQ(put["lease"], "7");
  EXPECT_FALSE(json::parse(EtcdPutBody("k", "v", 0)).contains("lease"));

  EtcdTxn txn;
  EtcdCompare c;
  c.key = "/s/state";
  c.target = EtcdCompare::Target::kModRevision;
  c.revision = 41;
  txn.compare.push_back(c);
  c.key = "/s/leader";
  c.target = EtcdCompare::Target::kCreateRevision;
  c.revision = 0;
  txn.compare.push_back(c);
  EtcdOp op;
  op.key = "/s/state";
  op.value = "{}";
  txn.success.push_back(op);
  op.kind = EtcdOp::Kind::kRange;
  txn.failure.push_back(op);
  json body = json::parse(EtcdTxnBody(txn));
  EXPECT_EQ(body["compare"][0], json({{"key", Base64Encode("/s/state")},
                                      {"result", "EQUAL"},
                                      {"target", "MOD"},
                                      {"mod_revision", "41"}}));
  EXPECT_EQ(body["compare"][1]["target"], "CREATE");
  EXPECT_EQ(body["compare"][1]["create_revision"], "0");
  EXPECT_EQ(body["success"][0]["request_put"]["value"], Base64Encode("{}"));
  EXPECT_TRUE(body["failure"][0].contains("request_range"));
  EXPECT_FALSE(body["failure"][0]["request_range"].contains("count_only"));
  txn.failure[0].count_only = true;
  body = json::parse(EtcdTxnBody(txn));
  EXPECT_EQ(body["failure"][0]["request_range"]["count_only"], true);

  json watch = json::parse(EtcdWatchBody("/s/", "/s0", 42));
  EXPECT_EQ(watch["create_request"]["start_revision"], "42");
  EXPECT_EQ(json::parse(EtcdLeaseGrantBody(5))["TTL"], "5");
  EXPECT_EQ(json::parse(EtcdLeaseIdBody(-3))["ID"], "-3");
}

TEST(EtcdProtocolTest, ParsesReplies) {
  absl::StatusOr<EtcdRangeResult> range = ParseEtcdRangeReply(kRangeReply);
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->revision, 2);
  ASSERT_EQ(range->kvs.size(), 1u);
  EXPECT_EQ(range->kvs[0].key, "/sluice/state");
  EXPECT_EQ(range->kvs[0].value, "hello");
  EXPECT_EQ(range->kvs[0].mod_revision, 2);

  absl::StatusOr<EtcdTxnResult> txn = ParseEtcdTxnReply(kTxnFailedReply);
  ASSERT_TRUE(txn.ok()) << txn.status();
  EXPECT_FALSE(txn->succeeded);  // proto3 leaves false out
  ASSERT_EQ(txn->ranges.size(), 1u);
  EXPECT_EQ(txn->ranges[0].kvs[0].value, "hello");

  EXPECT_EQ(txn->ranges[0].count, 1);

  // Count-only ranges as etcd 3.4 answers them: no kvs; a count of 0 left out.
  txn = ParseEtcdTxnReply(
      R"({"header":{"revision":"3"},"succeeded":true,"responses":[{"response_range":)"
      R"({"header":{"revision":"3"},"count":"2"}},{"response_range":{"header":)"
      R"({"revision":"3"}}}]})");
  ASSERT_TRUE(txn.ok()) << txn.status();
  ASSERT_EQ(txn->ranges.size(), 2u);
  EXPECT_EQ(txn->ranges[0].count, 2);
  EXPECT_TRUE(txn->ranges[0].kvs.empty());
  EXPECT_EQ(txn->ranges[1].count, 0);

  absl::StatusOr<EtcdLease> lease = ParseEtcdKeepAliveReply(kKeepAliveReply);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->id, 2324035538630474764);
  EXPECT_EQ(lease->ttl_seconds, 5);
  lease = ParseEtcdKeepAliveReply(kExpiredKeepAliveReply);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->ttl_seconds, 0);

  absl::StatusOr<EtcdLease> granted =
      ParseEtcdLeaseGrantReply(R"({"header":{"revision":"2"},"ID":"77","TTL":"5"})");
  ASSERT_TRUE(granted.ok());
  EXPECT_EQ(granted->id, 77);
  EXPECT_FALSE(ParseEtcdLeaseGrantReply(R"({"header":{"revision":"2"}})").ok());
  EXPECT_EQ(*ParseEtcdAuthReply(R"({"header":{},"token":"abc.15"})"), "abc.15");
}

TEST(EtcdProtocolTest, RefusesWhatEtcdDoesNotSend) {
  EXPECT_FALSE(ParseEtcdRangeReply("not json").ok());
  EXPECT_FALSE(ParseEtcdRangeReply(R"({"kvs":[]})").ok());  // no header
  EXPECT_FALSE(ParseEtcdRangeReply(R"({"header":{"revision":"x"}})").ok());
  EXPECT_FALSE(ParseEtcdRangeReply(R"({"header":{"revision":"1"},"kvs":[{"key":"%%%"}]})").ok());
  EXPECT_FALSE(ParseEtcdRangeReply(R"({"header":{"revision":"1"},"kvs":{}})").ok());
  EXPECT_FALSE(ParseEtcdRangeReply(R"({"header":{"revision":"1"},"count":"-2"})").ok());
  EXPECT_FALSE(ParseEtcdRangeReply(R"({"header":{"revision":"1"},"count":"two"})").ok());
  EXPECT_FALSE(ParseEtcdTxnReply(R"({"header":{"revision":"1"},"succeeded":"yes"})").ok());
  EXPECT_FALSE(ParseEtcdKeepAliveReply(R"({"header":{"revision":"1"}})").ok());
}

TEST(EtcdProtocolTest, ErrorsMapToStatusCodes) {
  absl::Status s = EtcdErrorStatus(
      404, R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested )"
           R"(lease not found","code":5})");
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_EQ(s.message(), "etcd: etcdserver: requested lease not found");
  EXPECT_TRUE(absl::IsUnauthenticated(
      EtcdErrorStatus(401, R"({"error":"etcdserver: invalid auth token","code":16})")));
  EXPECT_TRUE(absl::IsUnavailable(EtcdErrorStatus(503, "upstream gone")));
  EXPECT_TRUE(absl::IsUnavailable(EtcdErrorStatus(
      503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})")));
}

TEST(EtcdProtocolTest, WatchStreamSplitsMessagesAcrossChunks) {
  std::string stream =
      R"({"result":{"header":{"revision":"2"},"created":true}})"
      "\n"
      R"({"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"L3NsdWljZS94",)"
      R"("create_revision":"3","mod_revision":"3","version":"1","value":"MQ=="}},)"
      R"({"type":"DELETE","kv":{"key":"L3NsdWljZS95","mod_revision":"4"}}]}})"
      "\n";
  for (size_t chunk = 1; chunk <= stream.size(); chunk += 13) {
    EtcdWatchDecoder decoder;
    std::vector<EtcdWatchMessage> got;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      ASSERT_TRUE(decoder
                      .Feed(std::string_view(stream).substr(at, chunk),
                            [&](const EtcdWatchMessage& m) { got.push_back(m); })
                      .ok());
    }
    ASSERT_EQ(got.size(), 2u) << chunk;
    EXPECT_TRUE(got[0].created);
    ASSERT_EQ(got[1].events.size(), 2u);
    EXPECT_EQ(got[1].events[0].kv.key, "/sluice/x");
    EXPECT_EQ(got[1].events[0].kv.value, "1");
    EXPECT_FALSE(got[1].events[0].deleted);
    EXPECT_TRUE(got[1].events[1].deleted);
    EXPECT_EQ(got[1].events[1].kv.key, "/sluice/y");
  }
}

TEST(EtcdProtocolTest, WatchStreamErrorsEndIt) {
  EtcdWatchDecoder decoder;
  absl::Status s =
      decoder.Feed(R"({"error":{"grpc_code":14,"http_code":503,"message":"rpc error","code":14}})"
                   "\n",
                   [](const EtcdWatchMessage&) { FAIL(); });
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EtcdWatchDecoder compacted;
  std::vector<EtcdWatchMessage> got;
  ASSERT_TRUE(compacted
                  .Feed(R"({"result":{"header":{"revision":"9"},"canceled":true,)"
                        R"("compact_revision":"5"}})"
                        "\n",
                        [&](const EtcdWatchMessage& m) { got.push_back(m); })
                  .ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].canceled);
  EXPECT_EQ(got[0].compact_revision, 5);
  EtcdWatchDecoder garbage;
  EXPECT_FALSE(garbage.Feed("{\"result\": 1}\n", [](const EtcdWatchMessage&) {}).ok());
}

}  // namespace
}  // namespace sluice
