#include "proxy/forward/upstream_attempt.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/forward/header_rewriter.h"
#include "tests/proxy/forward/thread_origin.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

// The forwarder's side of a try, recorded: writes the head as the forwarder does
// (Forwarder::OnAttemptBegins) and notes every call.
class RecordingOwner : public UpstreamAttempt::Owner {
 public:
  void set_request(const RequestHead* request) { request_ = request; }
  // Forgets what was recorded (not the request).
  void Clear() {
    calls.clear();
    statuses.clear();
    errors.clear();
    body.clear();
    ready = ends = drained = 0;
  }

  void OnAttemptBegins(const UpstreamEndpoint& endpoint, std::string* head) override {
    EXPECT_TRUE(head->empty());
    calls.push_back("begins");
    SerializeUpstreamRequest(*request_, endpoint.name(), head);
  }
  void OnAttemptReady() override {
    calls.push_back("ready");
    ++ready;
  }
  void OnAttemptHead(ResponseHeadPtr head) override {
    calls.push_back("head " + std::to_string(head->status));
    statuses.push_back(head->status);
  }
  void OnAttemptBody(std::string_view data) override { body.append(data); }
  void OnAttemptTrailers(const HeaderMap&) override { calls.push_back("trailers"); }
  void OnAttemptEnd() override {
    calls.push_back("end");
    ++ends;
  }
  void OnAttemptDrained() override { ++drained; }
  void OnAttemptError(UpstreamError error, int, const char*) override {
    calls.push_back("error");
    errors.push_back(error);
  }
  void OnAttemptTimedOut(const AttemptFacts&, const char* what, const char*) override {
    calls.push_back(std::string("timed out: ") + what);
  }

  std::vector<std::string> calls;
  std::vector<int> statuses;
  std::vector<UpstreamError> errors;
  std::string body;
  int ready = 0;
  int ends = 0;
  int drained = 0;

 private:
  const RequestHead* request_ = nullptr;
};

class UpstreamAttemptTest : public ::testing::Test {
 protected:
  // A cluster of the given origins (round robin) and an attempt that goes to it.
  void Build(const std::vector<SocketAddress>& addresses, BreakerConfig breakers = {}) {
    config_.name = "app";
    config_.balancer = BalancerKind::kRoundRobin;
    config_.connect_timeout = absl::Seconds(2);
    config_.breakers = breakers;
    for (const SocketAddress& a : addresses) {
      endpoints_.push_back(std::make_shared<UpstreamEndpoint>(loop_.context(), a.ToString(), a,
                                                              PoolConfig{}, Http1Limits{}));
    }
    cluster_ = std::make_unique<ClusterRuntime>(config_, endpoints_, 1);
    attempt_ = NewAttempt();
  }

  std::unique_ptr<UpstreamAttempt> NewAttempt() {
    auto attempt = std::make_unique<UpstreamAttempt>(loop_.context(), &owner_, &wishes_);
    attempt->MoveTo(cluster_.get());
    return attempt;
  }

  // The request of every try: a GET, or a POST with a body of `body_length` bytes.
  void SetRequest(const char* method, size_t body_length = 0) {
    request_ = MakeRequestHead();
    request_->method_text = method;
    request_->method = ClassifyMethod(method);
    request_->target = "/x";
    request_->path = "/x";
    request_->headers.Add("Host", "a");
    if (body_length > 0) {
      request_->framing = BodyFraming::kContentLength;
      request_->content_length = body_length;
    }
    owner_.set_request(request_.get());
  }

  void TearDown() override {
    attempt_.reset();
    // Pooled connections would keep the loop alive: closed, and their closes run.
    for (const auto& endpoint : endpoints_) endpoint->Retire();
    loop_.RunUntil([&] {
      for (const auto& endpoint : endpoints_) {
        if (endpoint->connections() != 0) return false;
      }
      return true;
    });
    cluster_.reset();
    endpoints_.clear();
    loop_.context()->RunDeferredNow();
  }

  // What the cluster's counts say the attempt holds: nothing.
  void ExpectClusterCountsReturned() {
    EXPECT_EQ(cluster_->active_requests(), 0);
    EXPECT_EQ(cluster_->active_retries(), 0);
    EXPECT_EQ(cluster_->pending_connects(), 0);
  }

  bool RunUntilEnds(int ends) {
    return loop_.RunUntil([&] { return owner_.ends >= ends || !owner_.errors.empty(); });
  }

  TestLoop loop_;
  ClusterConfig config_;
  std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints_;
  std::unique_ptr<ClusterRuntime> cluster_;
  RequestHeadPtr request_;
  FilterContext wishes_;
  RecordingOwner owner_;
  std::unique_ptr<UpstreamAttempt> attempt_;
};

TEST_F(UpstreamAttemptTest, ATryGetsTheResponseAndItsConnectionIsPooledAndReused) {
  ThreadOrigin origin(200);
  SetRequest("GET");
  Build({origin.address()});
  UpstreamEndpoint& endpoint = *endpoints_[0];

  EXPECT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  EXPECT_EQ(attempt_->endpoint().get(), &endpoint);
  EXPECT_EQ(endpoint.outstanding(), 1u);
  EXPECT_EQ(cluster_->active_requests(), 1);
  EXPECT_EQ(cluster_->pending_connects(), 1);  // a new connection
  EXPECT_FALSE(attempt_->ready());
  ASSERT_TRUE(loop_.RunUntil([&] { return owner_.ready == 1; }));
  EXPECT_TRUE(attempt_->ready());
  EXPECT_TRUE(attempt_->head_sent());
  EXPECT_FALSE(attempt_->reused());
  EXPECT_EQ(cluster_->pending_connects(), 0);
  attempt_->EndRequest();
  attempt_->ArmResponseTimeout();
  ASSERT_TRUE(RunUntilEnds(1));
  EXPECT_EQ(owner_.calls, (std::vector<std::string>{"begins", "ready", "head 200", "end"}));
  EXPECT_EQ(owner_.body, "ok");
  ASSERT_EQ(origin.received().size(), 1u);
  EXPECT_EQ(origin.received()[0].rfind("GET /x HTTP/1.1\r\n", 0), 0u) << origin.received()[0];

  attempt_->Finish(true);
  EXPECT_FALSE(attempt_->ready());
  EXPECT_EQ(endpoint.idle_count(), 1u);  // the connection rests in the pool
  EXPECT_EQ(endpoint.outstanding(), 0u);
  EXPECT_EQ(endpoint.connections(), 1u);
  EXPECT_EQ(cluster_->active_requests(), 1);  // the request's slot stays until ReleaseSlots

  // The next try takes the pooled connection: ready at once, no connect.
  owner_.calls.clear();
  EXPECT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  EXPECT_EQ(owner_.ready, 2);
  EXPECT_TRUE(attempt_->ready());
  EXPECT_TRUE(attempt_->reused());
  EXPECT_EQ(endpoint.idle_count(), 0u);
  EXPECT_EQ(endpoint.outstanding(), 1u);
  EXPECT_EQ(cluster_->pending_connects(), 0);
  EXPECT_EQ(cluster_->active_requests(), 1);  // taken once for the request, not per try
  attempt_->EndRequest();
  ASSERT_TRUE(RunUntilEnds(2));
  EXPECT_EQ(owner_.calls, (std::vector<std::string>{"begins", "ready", "head 200", "end"}));
  EXPECT_EQ(origin.received().size(), 2u);
  EXPECT_EQ(endpoint.connections(), 1u);  // the same connection served both

  attempt_->Finish(true);
  attempt_->ReleaseSlots();
  EXPECT_EQ(endpoint.idle_count(), 1u);
  EXPECT_EQ(endpoint.outstanding(), 0u);
  ExpectClusterCountsReturned();
}

TEST_F(UpstreamAttemptTest, FinishWithoutReuseClosesTheConnection) {
  ThreadOrigin origin(200);
  SetRequest("GET");
  Build({origin.address()});
  UpstreamEndpoint& endpoint = *endpoints_[0];
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  ASSERT_TRUE(loop_.RunUntil([&] { return owner_.ready == 1; }));
  attempt_->EndRequest();
  ASSERT_TRUE(RunUntilEnds(1));
  attempt_->Finish(false);
  EXPECT_EQ(endpoint.idle_count(), 0u);
  EXPECT_EQ(endpoint.outstanding(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return endpoint.connections() == 0; }));
  attempt_->ReleaseSlots();
  ExpectClusterCountsReturned();
}

TEST_F(UpstreamAttemptTest, AnEmptyClusterHasNoEndpointAndTheRequestSlotIsHeld) {
  SetRequest("GET");
  Build({});
  UpstreamAttempt::Start start = attempt_->Begin(*request_, false);
  EXPECT_EQ(start.result, UpstreamAttempt::Start::kNoEndpoint);
  EXPECT_EQ(attempt_->endpoint(), nullptr);
  EXPECT_TRUE(owner_.calls.empty());  // no try began: no head was asked for
  EXPECT_EQ(cluster_->active_requests(), 1);
  EXPECT_EQ(cluster_->pending_connects(), 0);
  attempt_->Drop();
  EXPECT_EQ(cluster_->active_requests(), 1);  // Drop ends the try, not the request
  attempt_->ReleaseSlots();
  ExpectClusterCountsReturned();
}

TEST_F(UpstreamAttemptTest, AStandbyEndpointIsNoEndpoint) {
  ThreadOrigin origin(200);
  SetRequest("GET");
  Build({origin.address()});
  endpoints_[0]->SetStandby(true, 0, 0);
  EXPECT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kNoEndpoint);
  EXPECT_EQ(endpoints_[0]->outstanding(), 0u);
  EXPECT_EQ(endpoints_[0]->connections(), 0u);
  EXPECT_EQ(cluster_->active_requests(), 1);
  attempt_->ReleaseSlots();
  EXPECT_EQ(cluster_->active_requests(), 0);
  ExpectClusterCountsReturned();
  EXPECT_TRUE(origin.received().empty());
}

TEST_F(UpstreamAttemptTest, ARefusedConnectReportsAConnectFailureAndGivesEverythingBack) {
  SetRequest("GET");
  Build({RefusingAddress()});
  UpstreamEndpoint& endpoint = *endpoints_[0];
  UpstreamAttempt::Start start = attempt_->Begin(*request_, false);
  if (start.result == UpstreamAttempt::Start::kStarted) {
    ASSERT_TRUE(loop_.RunUntil([&] { return !owner_.errors.empty(); }));
    EXPECT_EQ(owner_.errors, std::vector<UpstreamError>{UpstreamError::kConnectFailed});
    EXPECT_EQ(owner_.calls, (std::vector<std::string>{"begins", "error"}));
  } else {
    EXPECT_EQ(start.result, UpstreamAttempt::Start::kConnectFailed);
    EXPECT_NE(start.error, 0);
  }
  EXPECT_EQ(owner_.ready, 0);
  EXPECT_FALSE(attempt_->ready());
  EXPECT_FALSE(attempt_->head_sent());
  EXPECT_EQ(cluster_->pending_connects(), 0);  // the connect is over
  attempt_->Drop();
  attempt_->ReleaseSlots();
  ExpectClusterCountsReturned();
  EXPECT_EQ(endpoint.outstanding(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return endpoint.connections() == 0; }));
}

TEST_F(UpstreamAttemptTest, AKeptBodyIsReplayedOnTheNextTry) {
  constexpr size_t kLength = 3000;
  const std::string body(kLength, 'b');
  ThreadOrigin origin(200);
  SetRequest("POST", kLength);
  wishes_.keep_request_body = true;
  Build({origin.address()});

  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  ASSERT_TRUE(loop_.RunUntil([&] { return owner_.ready == 1; }));
  EXPECT_FALSE(attempt_->reused());
  attempt_->SendBody(body.substr(0, 1000));
  attempt_->SendBody(body.substr(1000));
  attempt_->EndRequest();
  EXPECT_EQ(attempt_->body_sent(), kLength);
  EXPECT_TRUE(attempt_->replayable());
  ASSERT_TRUE(loop_.RunUntil([&] { return origin.received().size() == 1; }));

  // The try is abandoned (as after an error): the next one sends the body again by itself.
  attempt_->Drop();
  EXPECT_FALSE(attempt_->ready());
  owner_.Clear();  // the first try's response may have come
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  ASSERT_TRUE(loop_.RunUntil([&] { return owner_.ready == 1; }));
  EXPECT_TRUE(attempt_->replayable());
  EXPECT_EQ(attempt_->body_sent(), kLength);
  attempt_->EndRequest();
  ASSERT_TRUE(loop_.RunUntil([&] { return origin.received().size() == 2; }));
  ASSERT_TRUE(RunUntilEnds(1));
  EXPECT_TRUE(owner_.errors.empty());
  EXPECT_EQ(owner_.statuses, std::vector<int>{200});
  for (const std::string& received : origin.received()) {
    const size_t end = received.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(received.substr(end + 4), body);
    EXPECT_NE(received.find("Content-Length: 3000\r\n"), std::string::npos);
  }
  attempt_->Finish(true);
  attempt_->ReleaseSlots();
  ExpectClusterCountsReturned();
}

TEST_F(UpstreamAttemptTest, ABodyOnAFreshConnectionIsNotKeptUnlessAsked) {
  ThreadOrigin origin(200);
  SetRequest("POST", 4);
  wishes_.keep_request_body = false;
  Build({origin.address()});
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  ASSERT_TRUE(loop_.RunUntil([&] { return owner_.ready == 1; }));
  EXPECT_FALSE(attempt_->reused());
  EXPECT_TRUE(attempt_->replayable());  // nothing sent yet
  attempt_->SendBody("da");
  EXPECT_FALSE(attempt_->replayable());
  attempt_->SendBody("ta");
  EXPECT_FALSE(attempt_->replayable());
  EXPECT_EQ(attempt_->body_sent(), 4u);
  attempt_->EndRequest();
  ASSERT_TRUE(RunUntilEnds(1));
  ASSERT_EQ(origin.received().size(), 1u);
  EXPECT_NE(origin.received()[0].find("\r\n\r\ndata"), std::string::npos);
  attempt_->Finish(true);
  attempt_->ReleaseSlots();
  ExpectClusterCountsReturned();
}

TEST_F(UpstreamAttemptTest, ABodyOnAPooledConnectionIsKeptAndTooBigABodyIsNot) {
  // A pooled connection may be stale: its body is kept for the re-send without being asked,
  // up to the replay limit.
  ThreadOrigin origin(200);
  SetRequest("POST", 4);
  wishes_.replay_limit = 6;
  Build({origin.address()});
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  ASSERT_TRUE(loop_.RunUntil([&] { return owner_.ready == 1; }));
  attempt_->SendBody("data");
  EXPECT_FALSE(attempt_->replayable());  // a fresh connection
  attempt_->EndRequest();
  ASSERT_TRUE(RunUntilEnds(1));
  attempt_->Finish(true);
  ASSERT_EQ(endpoints_[0]->idle_count(), 1u);

  // A second request over the pooled connection.
  std::unique_ptr<UpstreamAttempt> second = NewAttempt();
  ASSERT_EQ(second->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  EXPECT_TRUE(second->reused());
  second->SendBody("da");
  second->SendBody("ta");
  EXPECT_TRUE(second->replayable());
  second->ForgetBody();  // the response is the client's: what was kept is gone
  EXPECT_FALSE(second->replayable());
  second->EndRequest();
  ASSERT_TRUE(RunUntilEnds(2));
  second->Finish(true);

  // A third whose body outgrows the limit.
  std::unique_ptr<UpstreamAttempt> third = NewAttempt();
  ASSERT_EQ(third->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  EXPECT_TRUE(third->reused());
  third->SendBody("dat");
  EXPECT_TRUE(third->replayable());
  third->SendBody("aXXX");  // 7 bytes in all: over the limit of 6
  EXPECT_FALSE(third->replayable());
  third.reset();
  second.reset();
  attempt_->ReleaseSlots();
  ExpectClusterCountsReturned();
  EXPECT_EQ(endpoints_[0]->outstanding(), 0u);
}

TEST_F(UpstreamAttemptTest, DestroyedWhileConnectingGivesEverythingBackAndHearsNothing) {
  ThreadOrigin origin(200);
  SetRequest("GET");
  Build({origin.address()});
  UpstreamEndpoint& endpoint = *endpoints_[0];
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  EXPECT_EQ(cluster_->pending_connects(), 1);
  EXPECT_EQ(cluster_->active_requests(), 1);
  EXPECT_EQ(endpoint.outstanding(), 1u);
  EXPECT_EQ(endpoint.connections(), 1u);
  attempt_.reset();  // the connect has not completed: the loop has not run
  ExpectClusterCountsReturned();
  EXPECT_EQ(endpoint.outstanding(), 0u);
  // The connect's completion and the close run now; none may reach the freed attempt (ASan).
  EXPECT_TRUE(loop_.RunUntil([&] { return endpoint.connections() == 0; }));
  loop_.RunUntil([] { return false; }, 20);
  EXPECT_EQ(owner_.calls, std::vector<std::string>{"begins"});
  EXPECT_EQ(endpoint.idle_count(), 0u);
  ExpectClusterCountsReturned();
}

TEST_F(UpstreamAttemptTest, DestroyedWhileARefusedConnectIsPendingHearsNothing) {
  SetRequest("GET");
  Build({RefusingAddress()});
  UpstreamEndpoint& endpoint = *endpoints_[0];
  if (attempt_->Begin(*request_, false).result != UpstreamAttempt::Start::kStarted) {
    GTEST_SKIP() << "the connect failed at once";
  }
  attempt_.reset();
  ExpectClusterCountsReturned();
  EXPECT_EQ(endpoint.outstanding(), 0u);
  EXPECT_TRUE(loop_.RunUntil([&] { return endpoint.connections() == 0; }));
  loop_.RunUntil([] { return false; }, 20);
  EXPECT_EQ(owner_.calls, std::vector<std::string>{"begins"});
  ExpectClusterCountsReturned();
}

TEST_F(UpstreamAttemptTest, TheRequestBreakerRefusesBeforeAnyTry) {
  ThreadOrigin origin(200);
  SetRequest("GET");
  Build({origin.address()}, BreakerConfig{.max_requests = 1});
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  std::unique_ptr<UpstreamAttempt> second = NewAttempt();
  UpstreamAttempt::Start start = second->Begin(*request_, false);
  EXPECT_EQ(start.result, UpstreamAttempt::Start::kFull);
  EXPECT_NE(start.full, nullptr);
  EXPECT_EQ(cluster_->active_requests(), 1);
  EXPECT_EQ(endpoints_[0]->outstanding(), 1u);  // only the first
  EXPECT_EQ(owner_.calls, std::vector<std::string>{"begins"});
  second.reset();
  EXPECT_EQ(cluster_->active_requests(), 1);
  attempt_.reset();
  ExpectClusterCountsReturned();
  EXPECT_EQ(endpoints_[0]->outstanding(), 0u);
}

TEST_F(UpstreamAttemptTest, ThePendingConnectBreakerRefusesASecondConnect) {
  ThreadOrigin origin(200);
  SetRequest("GET");
  Build({origin.address()}, BreakerConfig{.max_pending = 1});
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  EXPECT_EQ(cluster_->pending_connects(), 1);
  std::unique_ptr<UpstreamAttempt> second = NewAttempt();
  UpstreamAttempt::Start start = second->Begin(*request_, false);
  EXPECT_EQ(start.result, UpstreamAttempt::Start::kFull);
  EXPECT_NE(start.full, nullptr);
  EXPECT_EQ(cluster_->pending_connects(), 1);
  EXPECT_EQ(cluster_->active_requests(), 2);
  EXPECT_EQ(endpoints_[0]->connections(), 1u);
  second->Drop();
  second->ReleaseSlots();
  EXPECT_EQ(cluster_->active_requests(), 1);
  EXPECT_EQ(endpoints_[0]->outstanding(), 1u);  // the first's only
  attempt_->Drop();
  attempt_->ReleaseSlots();
  ExpectClusterCountsReturned();
  EXPECT_EQ(endpoints_[0]->outstanding(), 0u);
}

TEST_F(UpstreamAttemptTest, MovingToAnotherClusterGivesBackTheLastOnesSlot) {
  ThreadOrigin origin(200);
  SetRequest("GET");
  Build({});
  ClusterConfig other_config;
  other_config.name = "other";
  auto endpoint = std::make_shared<UpstreamEndpoint>(loop_.context(), "o", origin.address(),
                                                     PoolConfig{}, Http1Limits{});
  ClusterRuntime other(other_config, {endpoint}, 1);
  EXPECT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kNoEndpoint);
  EXPECT_EQ(cluster_->active_requests(), 1);
  attempt_->MoveTo(&other);
  EXPECT_EQ(attempt_->cluster(), &other);
  EXPECT_EQ(cluster_->active_requests(), 0);
  ASSERT_EQ(attempt_->Begin(*request_, false).result, UpstreamAttempt::Start::kStarted);
  EXPECT_EQ(other.active_requests(), 1);
  EXPECT_EQ(other.pending_connects(), 1);
  attempt_.reset();
  EXPECT_EQ(other.active_requests(), 0);
  EXPECT_EQ(other.pending_connects(), 0);
  EXPECT_TRUE(loop_.RunUntil([&] { return endpoint->connections() == 0; }));
}

TEST(UpstreamAttemptMappingTest, EndOfEachUpstreamError) {
  EXPECT_EQ(EndOf(UpstreamError::kConnectFailed), AttemptEnd::kConnect);
  EXPECT_EQ(EndOf(UpstreamError::kClosedBeforeResponse), AttemptEnd::kClosed);
  EXPECT_EQ(EndOf(UpstreamError::kClosedDuringResponse), AttemptEnd::kReset);
  EXPECT_EQ(EndOf(UpstreamError::kBadResponse), AttemptEnd::kBadResponse);
  EXPECT_EQ(EndOf(UpstreamError::kHttp2Refused), AttemptEnd::kHttp2Refused);
}

TEST(UpstreamAttemptMappingTest, FailureOfEachAttemptEnd) {
  EXPECT_EQ(FailureOf(AttemptEnd::kResponse), UpstreamFailure::kNone);
  EXPECT_EQ(FailureOf(AttemptEnd::kNoEndpoint), UpstreamFailure::kConnect);
  EXPECT_EQ(FailureOf(AttemptEnd::kHttp2Refused), UpstreamFailure::kReset);
  EXPECT_EQ(FailureOf(AttemptEnd::kConnect), UpstreamFailure::kConnect);
  EXPECT_EQ(FailureOf(AttemptEnd::kClosed), UpstreamFailure::kReset);
  EXPECT_EQ(FailureOf(AttemptEnd::kReset), UpstreamFailure::kReset);
  EXPECT_EQ(FailureOf(AttemptEnd::kBadResponse), UpstreamFailure::kBadResponse);
  EXPECT_EQ(FailureOf(AttemptEnd::kTimeout), UpstreamFailure::kTimeout);
}

}  // namespace
}  // namespace sluice
