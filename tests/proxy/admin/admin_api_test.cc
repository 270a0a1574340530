#include "proxy/admin/admin_api.h"

#include <uv.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/sha256.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

using nlohmann::json;

constexpr char kAdminToken[] = "admin-token-0123456789abcdef";
constexpr char kReadToken[] = "read-token-0123456789abcdef";

AdminToken Token(const std::string& name, const std::string& token, bool admin) {
  return AdminToken{name, admin, Sha256(token)};
}

class FakeBackend : public AdminBackend {
 public:
  explicit FakeBackend(uv_loop_t* loop)
      : steering_(loop, [this](SteeringTablePtr t) { published.push_back(std::move(t)); }) {}
  std::string RenderMetrics() override { return "sluice_ready 1\n"; }
  bool Ready(std::string* why) const override {
    *why = "draining";
    return ready;
  }
  bool Draining() const override { return draining; }
  json Health() override { return json{{"ready", ready}}; }
  SteeringControl* steering() override { return &steering_; }
  absl::Status InjectStandby(const std::string& cluster, const std::string& actor) override {
    if (cluster != "app") return absl::NotFoundError("no cluster named \"" + cluster + "\"");
    injected.push_back(cluster + " by " + actor);
    return absl::OkStatus();
  }
  absl::Status UninjectStandby(const std::string& cluster, const std::string& actor) override {
    injected.push_back(cluster + " out by " + actor);
    return absl::OkStatus();
  }
  json FleetStatus() override { return json{{"enabled", false}}; }
  DetectionControl* detection() override { return nullptr; }
  DnsControl* dns() override { return nullptr; }
  CapacityControl* capacity() override { return nullptr; }

  bool ready = true;
  bool draining = false;
  std::vector<SteeringTablePtr> published;
  std::vector<std::string> injected;
  SteeringControl steering_;
};

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    backend_ = std::make_unique<FakeBackend>(&loop_);
    Config config;
    config.steering.enabled = true;
    SteeringSpec& spec = config.steering.spec;
    spec.local_region = "us-east-1";
    for (const char* name : {"us-east-1", "us-west-2", "eu-west-1"}) {
      RegionSpec r;
      r.name = name;
      spec.regions.push_back(r);
    }
    spec.regions[0].saviors = {{"eu-west-1", 70}, {"us-west-2", 30}};
    ASSERT_TRUE(backend_->steering_.Start(config).ok());
    api_ = std::make_unique<AdminApi>(backend_.get());
    api_->SetTokens({Token("ops", kAdminToken, true), Token("dash", kReadToken, false)});
  }
  void TearDown() override {
    api_.reset();
    backend_->steering_.Stop();
    uv_run(&loop_, UV_RUN_NOWAIT);
    backend_.reset();
    uv_loop_close(&loop_);
  }

  AdminResponse Call(const std::string& method, const std::string& path,
                     const std::string& token = kAdminToken, const std::string& body = "") {
    AdminRequest r;
    r.method = method;
    r.path = path;
    if (size_t q = path.find('?'); q != std::string::npos) {  // as the admin server splits it
      r.query = path.substr(q + 1);
      r.path.resize(q);
    }
    r.host = "127.0.0.1:9901";
    r.client = *SocketAddress::Parse("127.0.0.1:40000");
    if (!token.empty()) r.authorization = "Bearer " + token;
    r.body = body;
    return Handle(r);
  }
  // Without a fleet every answer is immediate.
  AdminResponse Handle(const AdminRequest& r) {
    int calls = 0;
    AdminResponse out;
    api_->Handle(r, [&](const AdminResponse& response) {
      ++calls;
      out = response;
    });
    EXPECT_EQ(calls, 1);
    return out;
  }
  static json Body(const AdminResponse& r) { return json::parse(r.body); }

  uv_loop_t loop_;
  std::unique_ptr<FakeBackend> backend_;
  std::unique_ptr<AdminApi> api_;
};

TEST_F(AdminApiTest, OpenEndpointsNeedNoToken) {
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200);
  EXPECT_EQ(Call("GET", "/metrics", "").body, "sluice_ready 1\n");
  EXPECT_EQ(Call("GET", "/readyz", "").status, 200);
  backend_->ready = false;
  AdminResponse not_ready = Call("GET", "/readyz", "");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.body, "not ready: draining\n");
  EXPECT_EQ(Call("POST", "/metrics", "").status, 405);
}

TEST_F(AdminApiTest, ServingNeedsNoTokenAndFollowsTheTableAndTheDrain) {
  AdminResponse serving = Call("GET", "/v1/serving", "");
  EXPECT_EQ(serving.status, 200);
  EXPECT_EQ(serving.content_type, "application/json");
  EXPECT_EQ(Body(serving), json({{"serving", true},
                                 {"region", "us-east-1"},
                                 {"evacuated", "0%"},
                                 {"reason", "serving"}}));
  // Half evacuated: the region still serves the other half, so it stays in DNS.
  ASSERT_EQ(
      Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken, R"({"fraction": 50})").status,
      200);
  EXPECT_EQ(Call("GET", "/v1/serving", "").status, 200);
  ASSERT_EQ(
      Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken, R"({"fraction": 100})").status,
      200);
  AdminResponse evacuated = Call("HEAD", "/v1/serving", "");
  EXPECT_EQ(evacuated.status, 503);
  EXPECT_EQ(Body(evacuated)["reason"], "evacuated");
  EXPECT_EQ(Body(evacuated)["evacuated"], "100%");
  backend_->draining = true;  // draining wins: the process leaves whatever the table says
  EXPECT_EQ(Body(Call("GET", "/v1/serving", ""))["reason"], "draining");
  AdminResponse post = Call("POST", "/v1/serving", kAdminToken);
  EXPECT_EQ(post.status, 405);
  ASSERT_EQ(post.headers.size(), 1u);
  EXPECT_EQ(post.headers[0], std::make_pair(std::string("Allow"), std::string("GET, HEAD")));
}

TEST_F(AdminApiTest, MetricsAnswersAddressesLocalhostAndListedHostsOnly) {
  AdminRequest r;
  r.method = "GET";
  r.path = "/metrics";
  r.client = *SocketAddress::Parse("10.1.2.3:40000");
  for (const char* host :
       {"127.0.0.1:9901", "10.0.0.7", "[::1]:9901", "localhost:9901", "LOCALHOST"}) {
    r.host = host;
    EXPECT_EQ(Handle(r).status, 200) << host;
  }
  // A page on another site that re-points its name at this address (DNS rebinding).
  for (const char* host : {"evil.example", "evil.example:9901", ""}) {
    r.host = host;
    EXPECT_EQ(Handle(r).status, 421) << host;
  }
  AdminConfig config;
  config.hosts = {"metrics.internal"};
  CidrSet from;
  from.Add(*CidrRange::Parse("10.0.0.0/8"));
  config.metrics_from = from;
  api_->Configure(config);
  r.host = "Metrics.Internal:9901";
  EXPECT_EQ(Handle(r).status, 200);
  r.client = *SocketAddress::Parse("192.0.2.1:40000");
  EXPECT_EQ(Handle(r).status, 403);  // not in admin.metrics_from
}

TEST_F(AdminApiTest, TheHeadAloneDecidesARefusal) {
  AdminRequest r;
  r.method = "PUT";
  r.path = "/v1/steering/regions/us-east-1";
  r.host = "127.0.0.1";
  std::optional<AdminResponse> refused = api_->Screen(r);  // no token: no body is read
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 401);
  r.authorization = std::string("Bearer ") + kReadToken;
  refused = api_->Screen(r);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 403);
  r.authorization = std::string("Bearer ") + kAdminToken;
  EXPECT_FALSE(api_->Screen(r).has_value());  // may send its body
  r.path = "/nope";
  refused = api_->Screen(r);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 404);
}

TEST_F(AdminApiTest, TokensAndRoles) {
  AdminResponse missing = Call("GET", "/v1/steering", "");
  EXPECT_EQ(missing.status, 401);
  ASSERT_EQ(missing.headers.size(), 1u);
  EXPECT_EQ(missing.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(Call("GET", "/v1/steering", "wrong-token-0123456789abcdef").status, 401);
  EXPECT_EQ(Call("GET", "/v1/steering", std::string(kAdminToken) + "x").status, 401);
  AdminRequest basic;
  basic.method = "GET";
  basic.path = "/v1/steering";
  basic.authorization = std::string("Basic ") + kAdminToken;
  EXPECT_EQ(Handle(basic).status, 401);
  EXPECT_EQ(Call("GET", "/v1/steering", kReadToken).status, 200);
  AdminResponse forbidden =
      Call("PUT", "/v1/steering/regions/us-east-1", kReadToken, R"({"fraction": 5})");
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(Body(forbidden)["error"], "token \"dash\" may only read");
  EXPECT_TRUE(backend_->published.empty());
}

TEST_F(AdminApiTest, SetARegionWithOptimisticConcurrency) {
  json before = Body(Call("GET", "/v1/steering"));
  EXPECT_EQ(before["version"], 1);
  EXPECT_EQ(before["regions"]["us-east-1"]["fraction"], "0%");
  AdminResponse set = Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken,
                           R"({"fraction": "25%", "version": 1})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(Body(set)["version"], 2);
  EXPECT_EQ(Body(set)["regions"]["us-east-1"]["evacuated_bp"], 2500);
  ASSERT_EQ(backend_->published.size(), 1u);
  EXPECT_EQ(backend_->published[0]->version(), 2u);
  AdminResponse stale = Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken,
                             R"({"fraction": 50, "version": 1})");
  EXPECT_EQ(stale.status, 409);
  EXPECT_NE(Body(stale)["error"].get<std::string>().find("version 2"), std::string::npos);
  EXPECT_EQ(Call("PUT", "/v1/steering/regions/mars-1", kAdminToken, R"({"fraction": 5})").status,
            404);
}

TEST_F(AdminApiTest, BadBodiesNameTheFieldAndChangeNothing) {
  struct Case {
    std::string body, field;
  };
  for (const Case& c : std::vector<Case>{
           {"{", "not valid JSON"},
           {"[]", "JSON object"},
           {R"({"fraction": 101})", "fraction"},
           {R"({"fraction": "abc"})", "fraction"},
           {R"({"fraction": 2.555})", "fraction"},
           {R"({"fraction": 5, "colour": "red"})", "colour: unknown field"},
           {R"({"saviors": {"eu-west-1": 700}})", "saviors.eu-west-1"},
           {R"({"saviors": {"mars-1": 10}, "fraction": 5})", "mars-1"},
           {R"({"healthy": "yes"})", "healthy"},
           {R"({"version": -1, "fraction": 5})", "version"},
           {R"({})", "changes nothing"},
       }) {
    AdminResponse r = Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken, c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_NE(Body(r)["error"].get<std::string>().find(c.field), std::string::npos)
        << c.body << " -> " << r.body;
  }
  for (const Case& c : std::vector<Case>{
           {R"({"region": "us-east-1"})", "kind"},
           {R"({"kind": "evacuate", "region": 7})", "region"},
           {R"({"kind": "evacuate", "region": "us-east-1", "ramp": [5, 1]})", "increase"},
           {R"({"kind": "evacuate", "region": "us-east-1", "ramp": "5"})", "ramp"},
           {R"({"kind": "evacuate", "region": "us-east-1", "hold": "forever"})", "hold"},
           {R"({"kind": "restore", "region": "us-east-1", "saviors": {}})", "saviors"},
       }) {
    AdminResponse r = Call("POST", "/v1/plans", kAdminToken, c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_NE(Body(r)["error"].get<std::string>().find(c.field), std::string::npos)
        << c.body << " -> " << r.body;
  }
  EXPECT_EQ(backend_->steering_.controller()->state().version, 1u);
  EXPECT_TRUE(backend_->steering_.controller()->state().plans.empty());
}

TEST_F(AdminApiTest, PlansStartListAbort) {
  AdminResponse started =
      Call("POST", "/v1/plans", kAdminToken,
           R"({"kind": "evacuate", "region": "us-east-1", "saviors": {"eu-west-1": 100},
               "ramp": [10, "50%", "10000bp"], "hold": "1h"})");
  ASSERT_EQ(started.status, 201) << started.body;
  json plan = Body(started)["plan"];
  EXPECT_EQ(plan["id"], 1);
  EXPECT_EQ(plan["steps_bp"], json({1000, 5000, 10000}));
  EXPECT_EQ(plan["step"], 0);  // the first step is taken at once
  EXPECT_EQ(Body(Call("GET", "/v1/steering"))["regions"]["us-east-1"]["evacuated_bp"], 1000);
  EXPECT_EQ(Body(Call("GET", "/v1/plans", kReadToken))["plans"].size(), 1u);
  EXPECT_EQ(Call("GET", "/v1/plans/1", kReadToken).status, 200);
  EXPECT_EQ(Call("GET", "/v1/plans/7").status, 404);
  EXPECT_EQ(Call("GET", "/v1/plans/x").status, 404);
  // A direct change during the plan: 409 unless forced.
  EXPECT_EQ(Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken, R"({"fraction": 5})").status,
            409);
  EXPECT_EQ(Call("DELETE", "/v1/plans/1", kReadToken).status, 403);
  AdminResponse aborted = Call("DELETE", "/v1/plans/1");
  ASSERT_EQ(aborted.status, 200);
  EXPECT_EQ(Body(aborted)["plan"]["state"], "aborted");
  EXPECT_EQ(Call("DELETE", "/v1/plans/1").status, 409);
  EXPECT_EQ(Call("PATCH", "/v1/plans/1").status, 405);
}

TEST_F(AdminApiTest, StandbyInjectionAndUnknownPaths) {
  EXPECT_EQ(Call("POST", "/v1/clusters/app/standby:inject").status, 200);
  EXPECT_EQ(backend_->injected, std::vector<std::string>{"app by ops"});
  EXPECT_EQ(Call("POST", "/v1/clusters/nope/standby:inject").status, 404);
  EXPECT_EQ(Call("GET", "/v1/clusters/app/standby:inject").status, 405);
  EXPECT_EQ(Call("GET", "/v1/nothing").status, 404);
  EXPECT_EQ(Call("GET", "/").status, 404);
  EXPECT_EQ(Body(Call("GET", "/v1/health", kReadToken))["ready"], true);
  // Without a detector (this backend has none), its endpoints say so; a read token may not
  // change its mode or import history.
  EXPECT_EQ(Call("GET", "/v1/detection").status, 404);
  EXPECT_EQ(Call("PUT", "/v1/detection", kReadToken).status, 403);
  EXPECT_EQ(Call("POST", "/v1/history", kReadToken).status, 403);
  EXPECT_EQ(Call("DELETE", "/v1/history").status, 405);
}

TEST_F(AdminApiTest, AuditListsChangesWithSeqsAndTakesSinceAndLimit) {
  json empty = Body(Call("GET", "/v1/audit", kReadToken));
  EXPECT_EQ(empty["events"], json::array());
  EXPECT_EQ(empty["next"], 1);
  EXPECT_EQ(empty["dropped"], 0);
  ASSERT_EQ(
      Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken, R"({"fraction": 25})").status,
      200);
  ASSERT_EQ(
      Call("PUT", "/v1/steering/regions/us-east-1", kAdminToken, R"({"fraction": 50})").status,
      200);
  AdminResponse all = Call("GET", "/v1/audit", kReadToken);
  ASSERT_EQ(all.status, 200) << all.body;
  json body = Body(all);
  ASSERT_EQ(body["events"].size(), 2u) << all.body;
  const json& first = body["events"][0];
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["actor"], "ops");
  EXPECT_NE(first["action"].get<std::string>().find("us-east-1"), std::string::npos);
  EXPECT_EQ(first["version_before"], 1);
  EXPECT_EQ(first["version_after"], 2);
  EXPECT_EQ(first["warning"], false);
  EXPECT_EQ(body["events"][1]["seq"], 2);
  EXPECT_EQ(body["next"], 3);
  EXPECT_EQ(body["dropped"], 0);
  json after = Body(Call("GET", "/v1/audit?since=seq:1", kReadToken));
  ASSERT_EQ(after["events"].size(), 1u);
  EXPECT_EQ(after["events"][0]["seq"], 2);
  json newest = Body(Call("GET", "/v1/audit?limit=1&since=0", kReadToken));
  ASSERT_EQ(newest["events"].size(), 1u);
  EXPECT_EQ(newest["events"][0]["seq"], 2);
  json future = Body(Call("GET", "/v1/audit?since=2999-01-01T00:00:00Z", kReadToken));
  EXPECT_EQ(future["events"], json::array());
  EXPECT_EQ(future["next"], 3);
  AdminResponse bad = Call("GET", "/v1/audit?limit=0", kReadToken);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(Body(bad)["error"].get<std::string>().find("limit"), std::string::npos);
  bad = Call("GET", "/v1/audit?since=yesterday", kReadToken);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Body(bad)["error"].get<std::string>().rfind("since:", 0), 0u);
  EXPECT_EQ(Call("GET", "/v1/audit", "").status, 401);
  EXPECT_EQ(Call("POST", "/v1/audit", kAdminToken).status, 405);
}

TEST(ParseAuditQueryTest, Forms) {
  absl::StatusOr<AuditQuery> q = ParseAuditQuery("");
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->after_seq);
  EXPECT_FALSE(q->since);
  EXPECT_EQ(q->limit, 200u);
  q = ParseAuditQuery("since=seq:17&limit=1000");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->after_seq, 17u);
  EXPECT_EQ(q->limit, 1000u);
  q = ParseAuditQuery("since=seq:0");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->after_seq, 0u);
  q = ParseAuditQuery("since=1796234400.25");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q->since, absl::FromUnixMillis(1796234400250));
  q = ParseAuditQuery("since=1796234400");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q->since, absl::FromUnixSeconds(1796234400));
  q = ParseAuditQuery("since=2026-12-02T18:00:00Z");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q->since, absl::FromUnixSeconds(1796234400));
  q = ParseAuditQuery("since=2026-12-02T18:00:00.5Z");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q->since, absl::FromUnixMillis(1796234400500));
  // An offset, as written and percent-encoded.
  q = ParseAuditQuery("since=2026-12-02T19:00:00+01:00");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q->since, absl::FromUnixSeconds(1796234400));
  q = ParseAuditQuery("since=2026-12-02T19%3A00%3A00%2B01%3A00");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q->since, absl::FromUnixSeconds(1796234400));
}

TEST(ParseAuditQueryTest, ErrorsNameTheField) {
  struct Case {
    const char* query;
    const char* prefix;
  };
  for (const Case& c :
       {Case{"limit=0", "limit:"}, Case{"limit=1001", "limit:"}, Case{"limit=", "limit:"},
        Case{"limit=ten", "limit:"}, Case{"limit=-1", "limit:"}, Case{"since=", "since:"},
        Case{"since=seq:", "since:"}, Case{"since=seq:-1", "since:"}, Case{"since=seq:x", "since:"},
        Case{"since=-5", "since:"}, Case{"since=nan", "since:"},
        Case{"since=2026-13-02T18:00:00Z", "since:"}, Case{"since=2026-12-02", "since:"},
        Case{"since=%zz", "since:"}, Case{"since=%2", "since:"}, Case{"until=5", "query:"}}) {
    absl::StatusOr<AuditQuery> q = ParseAuditQuery(c.query);
    ASSERT_FALSE(q.ok()) << c.query;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(q.status().message().rfind(c.prefix, 0), 0u) << c.query << ": " << q.status();
  }
}

TEST(AuditPageJsonTest, TheConsolesFormat) {
  AuditPage page;
  page.events.push_back(
      AuditRecord{17, ControllerEvent{absl::FromUnixMillis(1796234400123), "admin",
                                      "set us-east-1 25%", 3, 4, false}});
  page.next = 18;
  page.dropped = 0;
  json parsed = json::parse(AuditPageJson(page));
  EXPECT_EQ(parsed, json::parse(R"({"events": [{"seq": 17, "time": "2026-12-02T18:00:00.123Z",
      "actor": "admin", "action": "set us-east-1 25%", "version_before": 3, "version_after": 4,
      "warning": false}], "next": 18, "dropped": 0})"));
  // Keys in the documented order.
  std::string text = AuditPageJson(page);
  EXPECT_LT(text.find("\"events\""), text.find("\"next\""));
  EXPECT_LT(text.find("\"next\""), text.find("\"dropped\""));
  EXPECT_LT(text.find("\"seq\""), text.find("\"time\""));
  EXPECT_LT(text.find("\"time\""), text.find("\"actor\""));
  EXPECT_LT(text.find("\"version_after\""), text.find("\"warning\""));
  // Whole seconds keep their three decimals.
  page.events[0].event.time = absl::FromUnixSeconds(1796234400);
  EXPECT_EQ(json::parse(AuditPageJson(page))["events"][0]["time"], "2026-12-02T18:00:00.000Z");
}

TEST(FractionFromJsonTest, Forms) {
  EXPECT_EQ(*FractionFromJson(json(25), "f"), 2500u);
  EXPECT_EQ(*FractionFromJson(json(0.5), "f"), 50u);
  EXPECT_EQ(*FractionFromJson(json("0.01%"), "f"), 1u);
  EXPECT_EQ(*FractionFromJson(json("2500bp"), "f"), 2500u);
  EXPECT_FALSE(FractionFromJson(json(-1), "f").ok());
  EXPECT_FALSE(FractionFromJson(json(100.5), "f").ok());
  EXPECT_FALSE(FractionFromJson(json(nullptr), "f").ok());
  EXPECT_FALSE(FractionFromJson(json(true), "f").ok());
}

}  // namespace
}  // namespace sluice
