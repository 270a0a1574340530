#include "proxy/fleet/etcd_client.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/fleet/fake_grpc_server.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

// A LeaseKeepAliveResponse naming `lease`, with `ttl` (the tests count answers in it).
std::string KeepAliveAnswer(int64_t lease, int64_t ttl) {
  std::string out;
  auto varint = [&out](uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  out.push_back(0x10);  // ID
  varint(static_cast<uint64_t>(lease));
  out.push_back(0x18);  // TTL
  varint(static_cast<uint64_t>(ttl));
  return out;
}

// The lease a LeaseKeepAliveRequest names (one field: ID = 1).
int64_t LeaseOf(const std::string& request) {
  int64_t lease = 0;
  int shift = 0;
  for (size_t i = 1; i < request.size(); ++i, shift += 7) {
    lease |= static_cast<int64_t>(request[i] & 0x7f) << shift;
  }
  return lease;
}

class EtcdClientGrpcTest : public testing::Test {
 protected:
  std::unique_ptr<EtcdClient> Client(std::vector<const FakeGrpcServer*> servers) {
    EtcdClientOptions options;
    for (const FakeGrpcServer* server : servers) {
      options.endpoints.push_back(*ParseHttpOrigin("http://" + server->address().ToString()));
    }
    options.timeout = absl::Seconds(1);
    return std::make_unique<EtcdClient>(loop_.context(), options);
  }

  TestLoop loop_;
};

TEST_F(EtcdClientGrpcTest, AnAnswerGoesToTheCallItAnswersEvenAfterThatOneTimedOut) {
  // etcd answers a stream's keep-alives in order: the first answer comes late (1.3 s, after
  // the client gave up on it at 1 s), the second at once, but behind the first (well within
  // its own second).
  FakeGrpcServer server;
  int answers = 0;
  server.set_answerer([&answers](const std::string& path, const std::string& request) {
    EXPECT_EQ(path, kEtcdLeaseKeepAlivePath);
    ++answers;
    return std::make_pair(KeepAliveAnswer(LeaseOf(request), answers), answers == 1 ? 1300 : 0);
  });
  auto client = Client({&server});
  absl::StatusOr<EtcdLease> first = absl::UnknownError("pending");
  absl::StatusOr<EtcdLease> second = absl::UnknownError("pending");
  client->LeaseKeepAlive(77, [&](absl::StatusOr<EtcdLease> r) { first = r; });
  ASSERT_TRUE(loop_.RunUntil([&] { return !absl::IsUnknown(first.status()); }));
  EXPECT_TRUE(absl::IsDeadlineExceeded(first.status())) << first.status();
  client->LeaseKeepAlive(77, [&](absl::StatusOr<EtcdLease> r) { second = r; });
  ASSERT_TRUE(loop_.RunUntil([&] { return !absl::IsUnknown(second.status()); }));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->id, 77);
  // The second answer (TTL 2), not the late first one (TTL 1), which is dropped.
  EXPECT_EQ(second->ttl_seconds, 2);
  // One connection, one stream for both; none through the gateway.
  EtcdClientStats stats = client->stats();
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.keepalives_grpc, 2u);
  EXPECT_EQ(stats.keepalives_json, 0u);
  EXPECT_EQ(server.streams().size(), 1u);
}

TEST_F(EtcdClientGrpcTest, ASilentMemberIsLeftForTheNextEndpoint) {
  // The first endpoint takes the connection and never answers; the keep-alive goes to the
  // second when its time-out comes, and is answered there.
  FakeGrpcServer silent(FakeGrpcServer::Mode::kSilent);
  FakeGrpcServer live;
  live.set_answerer([](const std::string&, const std::string& request) {
    return std::make_pair(KeepAliveAnswer(LeaseOf(request), 5), 0);
  });
  auto client = Client({&silent, &live});
  absl::StatusOr<EtcdLease> answer = absl::UnknownError("pending");
  client->LeaseKeepAlive(9, [&](absl::StatusOr<EtcdLease> r) { answer = r; });
  ASSERT_TRUE(loop_.RunUntil([&] { return !absl::IsUnknown(answer.status()); }));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->ttl_seconds, 5);
  EXPECT_EQ(client->endpoint(), "http://" + live.address().ToString());
  EXPECT_EQ(silent.connections(), 1);
  EXPECT_EQ(live.connections(), 1);
}

TEST_F(EtcdClientGrpcTest, ASlowSingleEndpointKeepsItsConnection) {
  // Nowhere else to go: the call times out (DeadlineExceeded: the fleet keeps its link) and
  // the next one goes on the same connection.
  FakeGrpcServer server;
  int answers = 0;
  server.set_answerer([&answers](const std::string&, const std::string& request) {
    ++answers;
    return std::make_pair(KeepAliveAnswer(LeaseOf(request), 5), answers == 1 ? 1300 : 0);
  });
  auto client = Client({&server});
  absl::StatusOr<EtcdLease> first = absl::UnknownError("pending");
  client->LeaseKeepAlive(3, [&](absl::StatusOr<EtcdLease> r) { first = r; });
  ASSERT_TRUE(loop_.RunUntil([&] { return !absl::IsUnknown(first.status()); }));
  EXPECT_TRUE(absl::IsDeadlineExceeded(first.status())) << first.status();
  EXPECT_NE(first.status().message().find("etcd did not answer in time"), std::string::npos);
  absl::StatusOr<EtcdLease> second = absl::UnknownError("pending");
  client->LeaseKeepAlive(3, [&](absl::StatusOr<EtcdLease> r) { second = r; });
  ASSERT_TRUE(loop_.RunUntil([&] { return !absl::IsUnknown(second.status()); }, 10000));
  EXPECT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(server.connections(), 1);
}

}  // namespace
}  // namespace sluice
