#include "proxy/upstream/upstream_endpoint.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <memory>

#include "proxy/upstream/upstream_connection.h"
#include "tests/proxy/loop_test_util.h"
#include "tests/proxy/tiny_origin.h"

namespace sluice {
namespace {

class UpstreamEndpointTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (endpoint_) endpoint_->Retire();
    origin_.Close();
    endpoint_.reset();
    // Let the closed handles finish before the origin that owns some of them goes.
    for (int i = 0; i < 3; ++i) uv_run(loop_.loop(), UV_RUN_NOWAIT);
  }

  std::shared_ptr<UpstreamEndpoint> MakeEndpoint(uint32_t max_idle, absl::Duration idle_timeout) {
    PoolConfig pool;
    pool.max_idle = max_idle;
    pool.idle_timeout = idle_timeout;
    pool.max_requests = 0;
    endpoint_ = std::make_shared<UpstreamEndpoint>(loop_.context(), "origin", origin_.address(),
                                                   pool, Http1Limits{});
    return endpoint_;
  }

  // One exchange on a new connection; true when it ended without error.
  bool ExchangeOnNewConnection() {
    OneExchange exchange;
    int error = 0;
    exchange.connection = endpoint_->Connect(&exchange, &error);
    if (!exchange.connection) return false;
    return loop_.RunUntil([&] { return exchange.done; }) && !exchange.failed;
  }

  TestLoop loop_;
  TinyOrigin origin_{loop_.loop()};
  std::shared_ptr<UpstreamEndpoint> endpoint_;
};

// Connections that close while idle (here by the pool's idle timeout) leave the pool's count:
// once more of them closed than the pool holds, finished connections are still pooled.
TEST_F(UpstreamEndpointTest, IdleTimeoutsDoNotFillThePool) {
  auto endpoint = MakeEndpoint(2, absl::Milliseconds(20));
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(ExchangeOnNewConnection()) << "round " << round;
    EXPECT_EQ(endpoint->idle_count(), 1u) << "round " << round;
    ASSERT_TRUE(loop_.RunUntil([&] { return endpoint->idle_count() == 0; }))
        << "round " << round << ": the idle connection was not closed";
  }
  EXPECT_EQ(origin_.accepted(), 5u);
}

// The same when the origin closes idle connections (its keep-alive timeout).
TEST_F(UpstreamEndpointTest, OriginClosingIdleConnectionsDoesNotFillThePool) {
  auto endpoint = MakeEndpoint(2, absl::Seconds(60));
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(ExchangeOnNewConnection()) << "round " << round;
    ASSERT_TRUE(ExchangeOnNewConnection()) << "round " << round;
    EXPECT_EQ(endpoint->idle_count(), 2u) << "round " << round;
    origin_.CloseConnections();
    ASSERT_TRUE(loop_.RunUntil([&] { return endpoint->idle_count() == 0; }))
        << "round " << round << ": the closed connections stayed in the pool";
  }
}

// A checked-out connection leaves the count and comes back to it; max_idle bounds the pool.
TEST_F(UpstreamEndpointTest, CheckoutAndMaxIdle) {
  auto endpoint = MakeEndpoint(2, absl::Seconds(60));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ExchangeOnNewConnection());
  EXPECT_EQ(endpoint->idle_count(), 2u);  // the third was closed: the pool was full
  OneExchange holder;
  UpstreamConnection* connection = endpoint->TakeIdle();
  ASSERT_NE(connection, nullptr);
  connection->Attach(&holder);
  EXPECT_EQ(endpoint->idle_count(), 1u);
  connection->Close();
  EXPECT_EQ(endpoint->idle_count(), 1u);
  EXPECT_TRUE(ExchangeOnNewConnection());
  EXPECT_EQ(endpoint->idle_count(), 2u);
}

}  // namespace
}  // namespace sluice
