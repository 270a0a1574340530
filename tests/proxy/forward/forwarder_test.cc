#include "proxy/forward/forwarder.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/net/listen_socket.h"
#include "proxy/upstream/upstream_endpoint.h"
#include "tests/proxy/forward/thread_origin.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

// The client side as the forwarder sees it.
class FakeStream : public ServerStream {
 public:
  void SendContinue() override {}
  void SendResponseHead(ResponseHead& head, bool end_stream) override {
    status = head.status;
    for (size_t i = 0; i < head.headers.size(); ++i) {
      headers.emplace_back(std::string(head.headers.name(i)), std::string(head.headers.value(i)));
    }
    started = true;
    ended = end_stream;
  }
  void SendResponseBody(std::string_view data, bool end_stream) override {
    body.append(data);
    ended = ended || end_stream;
  }
  void SendResponseTrailers(const HeaderMap& fields) override {
    for (size_t i = 0; i < fields.size(); ++i) {
      trailers.emplace_back(std::string(fields.name(i)), std::string(fields.value(i)));
    }
    ended = true;
  }
  void Reset() override { reset = true; }
  void CloseAfterResponse() override {}
  void PauseRequestBody() override {}
  void ResumeRequestBody() override {}
  bool OutputFull() const override { return false; }
  bool response_started() const override { return started; }
  const DownstreamInfo& downstream() const override { return info; }

  DownstreamInfo info;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<std::pair<std::string, std::string>> trailers;
  bool started = false;
  bool ended = false;
  bool reset = false;
};

// A filter whose behaviour each test scripts.
struct Script {
  FilterStatus on_head = FilterStatus::kContinue;
  bool retry_on_503 = false;
  bool retry_on_error = false;
  bool keep_body = false;
  std::vector<std::string> log;
  FilterResume* paused = nullptr;
  FilterOutcome last_outcome;
  int attempts_seen = 0;
};

class ScriptedFilter : public Filter {
 public:
  explicit ScriptedFilter(Script* script) : script_(script) {}
  std::string_view name() const override { return "scripted"; }
  FilterStatus OnRequestHead(FilterRequest& request, FilterSlot&) override {
    script_->log.push_back("head");
    request.context.keep_request_body = script_->keep_body;
    if (script_->on_head == FilterStatus::kRespond) {
      request.reply.status = 401;
      request.reply.headers.Add("WWW-Authenticate", "Bearer realm=\"test\"");
      request.reply.body = "no\n";
    }
    if (script_->on_head == FilterStatus::kPause) script_->paused = request.resume;
    return script_->on_head;
  }
  FilterStatus OnResponseHead(FilterRequest& request, ResponseHead& response,
                              FilterSlot&) override {
    script_->log.push_back("response " + std::to_string(response.status));
    script_->attempts_seen = request.context.attempts;
    return script_->retry_on_503 && response.status == 503 ? FilterStatus::kRetry
                                                           : FilterStatus::kContinue;
  }
  FilterStatus OnUpstreamError(FilterRequest&, FilterSlot&) override {
    script_->log.push_back("error");
    return script_->retry_on_error ? FilterStatus::kRetry : FilterStatus::kContinue;
  }
  void OnComplete(FilterRequest&, const FilterOutcome& outcome, FilterSlot&) override {
    script_->log.push_back(outcome.cancelled ? "cancelled" : "complete");
    script_->last_outcome = outcome;
    script_->paused = nullptr;
  }

 private:
  Script* script_;
};

class ForwarderTest : public ::testing::Test {
 protected:
  // A cluster of the given origins (round robin) behind one route with the scripted filter.
  void Build(std::vector<SocketAddress> endpoints, RetryBudgetConfig budget = {}) {
    auto config = std::make_shared<Config>();
    ClusterConfig cluster;
    cluster.name = "app";
    cluster.retry_budget = budget;
    cluster.balancer = BalancerKind::kRoundRobin;
    cluster.connect_timeout = absl::Seconds(2);
    for (const SocketAddress& a : endpoints) {
      EndpointConfig endpoint;
      endpoint.text = a.ToString();
      endpoint.address = a;
      cluster.endpoints.push_back(endpoint);
    }
    config->clusters.push_back(cluster);
    config->routes.push_back(RouteConfig{});
    config->routes[0].cluster = "app";
    config_ = config;
    snapshot_ = std::make_shared<WorkerSnapshot>(config_);
    std::vector<std::shared_ptr<UpstreamEndpoint>> members;
    for (const SocketAddress& a : endpoints) {
      members.push_back(std::make_shared<UpstreamEndpoint>(loop_.context(), a.ToString(), a,
                                                           PoolConfig{}, Http1Limits{}));
    }
    snapshot_->clusters.push_back(
        std::make_unique<ClusterRuntime>(config_->clusters[0], std::move(members), 1));
    snapshot_->limiters.push_back(nullptr);
    FilterChain chain;
    chain.Add(std::make_unique<ScriptedFilter>(&script_));
    snapshot_->chains.push_back(std::move(chain));
    snapshot_->default_retries.push_back(default_retries_);
    stream_.info.client = *SocketAddress::Parse("127.0.0.1:5000");
    forwarder_ = std::make_unique<Forwarder>(loop_.context(), snapshot_, &stream_);
  }

  void Send(const char* method, std::string_view body = {}) {
    RequestHeadPtr head = MakeRequestHead();
    head->method_text = method;
    head->method = ClassifyMethod(method);
    head->target = "/x";
    head->headers.Add("Host", "a");
    if (!body.empty()) {
      head->framing = BodyFraming::kContentLength;
      head->content_length = body.size();
    }
    forwarder_->OnRequestHead(std::move(head));
    if (!body.empty()) forwarder_->OnRequestBody(body);
    forwarder_->OnRequestEnd();
  }

  bool RunUntilEnded() {
    return loop_.RunUntil([&] { return stream_.ended || stream_.reset; });
  }

  void TearDown() override {
    forwarder_.reset();
    snapshot_.reset();
    loop_.context()->RunDeferredNow();
    loop_.RunUntil([] { return false; }, 20);  // let closing sockets close
  }

  // What the counts of the cluster say this request holds: nothing once it ended.
  void ExpectClusterCountsReturned() {
    const ClusterRuntime& cluster = *snapshot_->clusters[0];
    EXPECT_EQ(cluster.active_requests(), 0);
    EXPECT_EQ(cluster.active_retries(), 0);
    EXPECT_EQ(cluster.pending_connects(), 0);
  }

  TestLoop loop_;
  Script script_;
  // The route's chain has no retry policy: the forwarder's default one applies (the scripted
  // filter then never asks).
  bool default_retries_ = false;
  ConfigPtr config_;
  WorkerSnapshotPtr snapshot_;
  FakeStream stream_;
  std::unique_ptr<Forwarder> forwarder_;
};

TEST_F(ForwarderTest, FilterAnswersAndNothingGoesUpstream) {
  ThreadOrigin origin(200);
  script_.on_head = FilterStatus::kRespond;
  Build({origin.address()});
  Send("GET");
  EXPECT_TRUE(stream_.ended);
  EXPECT_EQ(stream_.status, 401);
  EXPECT_EQ(stream_.body, "no\n");
  EXPECT_EQ(stream_.headers[0].first, "WWW-Authenticate");
  EXPECT_TRUE(script_.last_outcome.answered_by_filter);
  EXPECT_TRUE(origin.received().empty());
}

TEST_F(ForwarderTest, PausedFilterResumesFromTheLoop) {
  ThreadOrigin origin(200);
  script_.on_head = FilterStatus::kPause;
  Build({origin.address()});
  Send("POST", "body");
  loop_.RunUntil([] { return false; }, 50);
  EXPECT_TRUE(origin.received().empty());  // held while the filter works
  ASSERT_NE(script_.paused, nullptr);
  script_.paused->Resume(FilterStatus::kContinue);
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 200);
  ASSERT_EQ(origin.received().size(), 1u);
  EXPECT_NE(origin.received()[0].find("\r\n\r\nbody"), std::string::npos);  // the held body
}

TEST_F(ForwarderTest, ClientLeavingDuringAPauseCancels) {
  ThreadOrigin origin(200);
  script_.on_head = FilterStatus::kPause;
  Build({origin.address()});
  Send("GET");
  forwarder_->OnStreamReset(StreamResetReason::kDownstreamClosed);
  EXPECT_EQ(script_.log.back(), "cancelled");
  EXPECT_EQ(script_.paused, nullptr);
}

TEST_F(ForwarderTest, RetryOnAResponseGoesToAnotherEndpoint) {
  ThreadOrigin failing(503);
  ThreadOrigin healthy(200);
  script_.retry_on_503 = true;
  Build({failing.address(), healthy.address()});
  Send("GET");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 200);  // the client never saw the 503
  EXPECT_EQ(failing.received().size(), 1u);
  EXPECT_EQ(healthy.received().size(), 1u);
  EXPECT_EQ(script_.attempts_seen, 2);
  EXPECT_EQ(script_.log,
            (std::vector<std::string>{"head", "response 503", "response 200", "complete"}));
}

TEST_F(ForwarderTest, RetryOnAnUpstreamErrorReplaysAKeptBody) {
  ThreadOrigin dead(0);  // accepts, reads the request, closes without an answer
  ThreadOrigin healthy(200);
  script_.retry_on_error = true;
  script_.keep_body = true;
  Build({dead.address(), healthy.address()});
  Send("POST", "payload");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 200);
  ASSERT_EQ(healthy.received().size(), 1u);
  EXPECT_NE(healthy.received()[0].find("\r\n\r\npayload"), std::string::npos);
}

TEST_F(ForwarderTest, NoRetryForABodyThatWasNotKept) {
  ThreadOrigin dead(0);
  ThreadOrigin healthy(200);
  script_.retry_on_error = true;  // asks, but the body is gone: the client gets the 502
  Build({dead.address(), healthy.address()});
  Send("POST", "payload");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 502);
  EXPECT_TRUE(healthy.received().empty());
  EXPECT_TRUE(script_.last_outcome.upstream_failed);
}

TEST_F(ForwarderTest, AnExhaustedBudgetLetsTheFailedAnswerStand) {
  ThreadOrigin failing(503);
  ThreadOrigin healthy(200);
  script_.retry_on_503 = true;
  Build({failing.address(), healthy.address()}, RetryBudgetConfig{0.0, 0});
  Send("GET");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 503);
  EXPECT_TRUE(healthy.received().empty());
  EXPECT_EQ(snapshot_->clusters[0]->budget_denials(), 1u);
  ExpectClusterCountsReturned();
}

TEST_F(ForwarderTest, AConnectFailureIsRetriedOutsideTheBudget) {
  // The request never reached an origin: another endpoint adds no work, so no budget needed.
  ThreadOrigin healthy(200);
  script_.retry_on_error = true;
  Build({RefusingAddress(), healthy.address()}, RetryBudgetConfig{0.0, 0});
  Send("GET");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 200);
  EXPECT_EQ(healthy.received().size(), 1u);
  EXPECT_EQ(snapshot_->clusters[0]->budget_denials(), 0u);
  ExpectClusterCountsReturned();
}

TEST_F(ForwarderTest, TheDefaultPolicyRetriesAnIdempotentRequestOnceOnAnotherEndpoint) {
  ThreadOrigin dead(0);  // reads the request, closes without an answer
  ThreadOrigin healthy(200);
  default_retries_ = true;
  Build({dead.address(), healthy.address()});
  Send("GET");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 200);
  EXPECT_EQ(dead.received().size(), 1u);
  EXPECT_EQ(healthy.received().size(), 1u);
  ExpectClusterCountsReturned();
}

TEST_F(ForwarderTest, TheDefaultPolicyNeverSendsAPostThatMayHaveArrivedAgain) {
  ThreadOrigin dead(0);
  ThreadOrigin healthy(200);
  default_retries_ = true;
  Build({dead.address(), healthy.address()});
  Send("POST", "payload");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 502);
  EXPECT_TRUE(healthy.received().empty());
  ExpectClusterCountsReturned();
}

TEST_F(ForwarderTest, TheDefaultPolicyRetriesAFailedConnectOfAPost) {
  ThreadOrigin healthy(200);
  default_retries_ = true;
  Build({RefusingAddress(), healthy.address()});
  Send("POST", "payload");
  ASSERT_TRUE(RunUntilEnded());
  EXPECT_EQ(stream_.status, 200);
  ASSERT_EQ(healthy.received().size(), 1u);
  EXPECT_NE(healthy.received()[0].find("\r\n\r\npayload"), std::string::npos);
  ExpectClusterCountsReturned();
}

}  // namespace
}  // namespace sluice
