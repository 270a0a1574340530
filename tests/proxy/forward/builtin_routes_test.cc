#include "proxy/forward/builtin_routes.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "steering/serving.h"

namespace sluice {
namespace {

const std::string kKey(32, 'k');
const std::string kOtherKey(32, 'o');

// us-east-1 is local; `evacuated_bp` of it is served elsewhere.
SteeringTablePtr EastTable(uint32_t evacuated_bp = 0) {
  SteeringSpec spec;
  spec.local_region = "us-east-1";
  RegionSpec east;
  east.name = "us-east-1";
  east.evacuated_bp = evacuated_bp;
  east.saviors = {{"us-west-2", 100}};
  RegionSpec west;
  west.name = "us-west-2";
  spec.regions = {east, west};
  absl::StatusOr<SteeringTablePtr> table = BuildSteeringTable(spec, 1);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : nullptr;
}

std::optional<std::string> Header(const LocalAnswer& answer, std::string_view name) {
  std::optional<std::string_view> value = answer.headers.Get(name);
  if (!value) return std::nullopt;
  return std::string(*value);
}

TEST(BuiltinRoutesTest, ServingTargetIsExactlyThePathWithOrWithoutAQuery) {
  EXPECT_TRUE(IsServingTarget("/v1/serving"));
  EXPECT_TRUE(IsServingTarget("/v1/serving?x"));
  EXPECT_TRUE(IsServingTarget("/v1/serving?"));
  EXPECT_FALSE(IsServingTarget("/v1/serving/"));
  EXPECT_FALSE(IsServingTarget("/v1//serving"));
  EXPECT_FALSE(IsServingTarget("/v1/servingx"));
  EXPECT_FALSE(IsServingTarget("/v1/%73erving"));
  EXPECT_FALSE(IsServingTarget("/v1/servin"));
  EXPECT_FALSE(IsServingTarget("/V1/serving"));
  EXPECT_FALSE(IsServingTarget("http://a/v1/serving"));
  EXPECT_FALSE(IsServingTarget(""));
}

TEST(BuiltinRoutesTest, ServingAnswersGetWithTheServingStateOfTheTable) {
  SteeringTablePtr table = EastTable();
  SteeringTablePtr evacuated = EastTable(kBasisPoints);
  struct Case {
    const SteeringTable* table;
    bool draining;
  };
  for (const Case& c : {Case{nullptr, false}, Case{nullptr, true}, Case{table.get(), false},
                        Case{table.get(), true}, Case{evacuated.get(), false}}) {
    SCOPED_TRACE(testing::Message()
                 << "table " << (c.table != nullptr) << " draining " << c.draining);
    const ServingState state = DecideServing(c.table, c.draining);
    LocalAnswer answer = AnswerServing(HttpMethod::kGet, c.table, c.draining);
    EXPECT_EQ(answer.status, state.status());
    EXPECT_EQ(answer.body, ServingJson(state));
    EXPECT_EQ(Header(answer, "Cache-Control"), "no-store");
    EXPECT_EQ(Header(answer, "Content-Type"), "application/json");
    EXPECT_FALSE(answer.headers.Get("Allow"));
  }
  // What DecideServing says, spelled out for the cases that matter to a DNS health check.
  EXPECT_EQ(AnswerServing(HttpMethod::kGet, nullptr, false).status, 200);
  EXPECT_EQ(AnswerServing(HttpMethod::kGet, nullptr, true).status, 503);
  EXPECT_EQ(AnswerServing(HttpMethod::kGet, table.get(), false).status, 200);
  EXPECT_EQ(AnswerServing(HttpMethod::kGet, table.get(), true).status, 503);
  EXPECT_EQ(AnswerServing(HttpMethod::kGet, evacuated.get(), false).status, 503);
}

TEST(BuiltinRoutesTest, ServingAnswersHeadLikeGetWithoutABody) {
  SteeringTablePtr table = EastTable();
  for (const SteeringTable* t : {static_cast<const SteeringTable*>(nullptr), table.get()}) {
    for (bool draining : {false, true}) {
      SCOPED_TRACE(testing::Message() << "table " << (t != nullptr) << " draining " << draining);
      LocalAnswer get = AnswerServing(HttpMethod::kGet, t, draining);
      LocalAnswer head = AnswerServing(HttpMethod::kHead, t, draining);
      EXPECT_EQ(head.status, get.status);
      EXPECT_EQ(head.status, DecideServing(t, draining).status());
      EXPECT_TRUE(head.body.empty());
      EXPECT_FALSE(get.body.empty());
      EXPECT_EQ(Header(head, "Cache-Control"), "no-store");
      EXPECT_EQ(Header(head, "Content-Type"), "application/json");
    }
  }
}

TEST(BuiltinRoutesTest, ServingRefusesOtherMethods) {
  SteeringTablePtr table = EastTable();
  for (HttpMethod method : {HttpMethod::kPost, HttpMethod::kPut, HttpMethod::kDelete,
                            HttpMethod::kOptions, HttpMethod::kOther}) {
    for (bool draining : {false, true}) {
      for (const SteeringTable* t : {static_cast<const SteeringTable*>(nullptr), table.get()}) {
        SCOPED_TRACE(testing::Message() << "method " << static_cast<int>(method) << " draining "
                                        << draining << " table " << (t != nullptr));
        LocalAnswer answer = AnswerServing(method, t, draining);
        EXPECT_EQ(answer.status, 405);  // whatever the serving state
        EXPECT_EQ(Header(answer, "Allow"), "GET, HEAD");
        EXPECT_EQ(Header(answer, "Cache-Control"), "no-store");
        EXPECT_NE(answer.body, ServingJson(DecideServing(t, draining)));
      }
    }
  }
}

TEST(BuiltinRoutesTest, PeerHealthIsOnlyAGetOfTheHealthPathTunneledIn) {
  RequestHeadPtr head = MakeRequestHead();
  head->method = HttpMethod::kGet;
  head->method_text = "GET";
  head->target = "/v1/health";
  head->path = "/v1/health";
  EXPECT_TRUE(IsPeerHealthRequest(*head, true));
  EXPECT_FALSE(IsPeerHealthRequest(*head, false));  // from a client: an ordinary path

  head->method = HttpMethod::kHead;
  head->method_text = "HEAD";
  EXPECT_FALSE(IsPeerHealthRequest(*head, true));
  head->method = HttpMethod::kPost;
  head->method_text = "POST";
  EXPECT_FALSE(IsPeerHealthRequest(*head, true));

  head->method = HttpMethod::kGet;
  head->method_text = "GET";
  for (const char* path : {"/v1/health/", "/v1/healthz", "/v1/serving", "/", "/V1/health"}) {
    head->path = path;
    head->target = path;
    EXPECT_FALSE(IsPeerHealthRequest(*head, true)) << path;
  }
  // The query is not part of the path.
  head->path = "/v1/health";
  head->target = "/v1/health?x=1";
  head->query = "?x=1";
  EXPECT_TRUE(IsPeerHealthRequest(*head, true));
}

TEST(BuiltinRoutesTest, PeerHealthWithoutAViewIsUnavailableAndUnsigned) {
  SteeringTablePtr table = EastTable();
  HopSigner signer({kKey});
  LocalAnswer answer = AnswerPeerHealth(nullptr, signer, *table, "us-west-2", 7);
  EXPECT_EQ(answer.status, 503);
  EXPECT_FALSE(answer.headers.Get(kHealthMacHeader));
  EXPECT_FALSE(answer.body.empty());
}

TEST(BuiltinRoutesTest, PeerHealthSignsTheViewForThePollThatAsked) {
  SteeringTablePtr table = EastTable();
  HopSigner signer({kKey});
  const std::string view = "{\"region\": \"us-east-1\", \"ready\": true}\n";
  constexpr uint64_t kNonce = 0x1234abcd5678ef00;
  LocalAnswer answer = AnswerPeerHealth(&view, signer, *table, "us-west-2", kNonce);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, view);
  std::optional<std::string> mac = Header(answer, kHealthMacHeader);
  ASSERT_TRUE(mac);
  EXPECT_EQ(mac->size(), 64u);
  // Signed by the local region for the poller, its nonce and this body.
  EXPECT_TRUE(
      signer.VerifyMacHex(HealthReplyMessage("us-east-1", "us-west-2", kNonce, view), *mac));
  EXPECT_FALSE(
      signer.VerifyMacHex(HealthReplyMessage("us-east-1", "us-west-2", kNonce + 1, view), *mac));
  EXPECT_FALSE(
      signer.VerifyMacHex(HealthReplyMessage("us-west-2", "us-east-1", kNonce, view), *mac));
  EXPECT_FALSE(
      signer.VerifyMacHex(HealthReplyMessage("us-east-1", "us-west-2", kNonce, view + " "), *mac));
  EXPECT_FALSE(HopSigner({kOtherKey})
                   .VerifyMacHex(HealthReplyMessage("us-east-1", "us-west-2", kNonce, view), *mac));
}

}  // namespace
}  // namespace sluice
